"""What a study is: a declarative grid, read from TOML or built in Python, checked before any work.

A study crosses the grid axes

- ``data``: data sets, ``"bars"``, ``"digits"`` (L = 64) or ``"model"`` (samples of a random model);
- ``K``: numbers of binary latents; ``hidden``: decoder hidden sizes, e.g. ``[[64]]``;
- ``estimators``: estimator specifications as in ``vi-lab variance`` (``"rloo"``, ``"disarm"``,
  ``"concrete:tau=0.5"``; ``vi_lab.experiments.specs``), plus the references ``"exact_elbo"``
  (ascent of the exact ELBO gradient) and ``"exact_ml"`` (exact maximum likelihood);
- ``S``: samples per datapoint per step; ``method``: ``"amortized"`` or ``"per_datapoint"``;
- ``seeds``: what varies initialization and sampling; the data split has its own ``split_seed``,
  fixed across seeds, so the same seed gives every estimator the same initialization and split
  (comparisons are paired over seeds),

and measures ``train`` (learning curves of exact held-out log p(x)) and/or ``variance`` (gradient
variance at checkpoints along each estimator's own run and along one shared exact_elbo run).

Every estimator trains on the same budget of decoder evaluations per training datapoint
(``budget_evals``): a step on a batch of B rows costs B S c evaluations, c = the estimator's
``cost(model)`` per draw (2 for ARM/DisARM, 3 for REBAR/RELAX, 2**K for exact enumeration), so it
gets ``floor(budget_evals N / (B S c))`` steps.

A TOML file::

    name = "quick"
    seed = 0                      # study seed: every cell's random stream derives from it and the cell
    split_seed = 0                # data split (fixed across seeds); "seed" to vary it with the seed
    measure = ["train", "variance"]

    [grid]
    data = ["bars"]
    K = [4]
    hidden = [[16]]
    estimators = ["rloo", "disarm", "exact_elbo"]
    S = [2]
    method = ["amortized"]
    seeds = [0, 1, 2]

    [train]
    budget_evals = 4000           # decoder evaluations per training datapoint, for every estimator
    batch_size = 40
    encoder_hidden = [32]
    valid_fraction = 0.25
    learning_rate = 0.01
    eval_size = 100               # exact train log p(x) on a fixed subset (held-out: all rows)
    records = 10                  # points along each learning curve
    reference_steps = 200         # references train this many steps instead of the equal budget

    [variance]
    checkpoints = [0.1, 0.5, 1.0] # fractions of each run
    reps = 50                     # independent gradient estimates per measurement
    rows = 40                     # training rows the gradient is taken on
    warmup = 20                   # calls that fit a fresh stateful estimator's baseline (shared run)
"""
import hashlib
import json
import math
import sys
from dataclasses import dataclass, field, fields

from .._validation import check_positive_int

__all__ = ["Study", "load", "REFERENCES", "DATA_SETS", "METHODS", "MEASURES"]

REFERENCES = ("exact_elbo", "exact_ml")
DATA_SETS = ("bars", "digits", "model")
METHODS = ("amortized", "per_datapoint")
MEASURES = ("train", "variance")
#: the grid axes, in the order of cell keys and table columns
AXES = ("data", "K", "hidden", "method", "estimators", "S", "seeds")
_TRAIN = ("budget_evals", "batch_size", "encoder_hidden", "valid_fraction", "learning_rate", "eval_size",
          "records", "reference_steps")
_VARIANCE = ("checkpoints", "reps", "rows", "warmup", "model_grad")
_TOP = ("name", "seed", "split_seed", "measure", "grid", "train", "variance")


def _ints(values, name, minimum=1):
    values = _as_list(values, name)
    return tuple(check_positive_int(v, name, minimum=minimum) for v in values)


def _as_list(values, name):
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        values = [values]
    values = list(values)
    if not values:
        raise ValueError(f"grid: axis {name!r} is empty; give at least one value (the grid would have no cells)")
    return values


def _hidden(values):
    out = []
    for h in _as_list(values, "hidden"):
        h = (h,) if isinstance(h, int) and not isinstance(h, bool) else h
        if not isinstance(h, (list, tuple)) or not h:
            raise ValueError(f"grid: hidden sizes are lists of layer widths such as [[64]] or [[32, 32]], got {h!r}")
        out.append(tuple(check_positive_int(w, "hidden (each width)") for w in h))
    return tuple(out)


def _choice(values, name, allowed):
    values = tuple(_as_list(values, name))
    for v in values:
        if v not in allowed:
            raise ValueError(f"grid: unknown {name} {v!r}; expected one of {', '.join(allowed)}")
    return values


@dataclass(frozen=True)
class Study:
    """A study: grid axes, training and measurement settings (see the module docstring).

    All arguments are keywords; lists may be given as tuples. ``Study(...)`` checks everything it
    can without training (axes, estimator names and options, K against enumeration, budgets
    against one step) and raises ValueError naming what is wrong.

    Examples
    --------
    >>> from vi_lab.study import Study
    >>> study = Study(data=["bars"], K=[4], hidden=[[16]], estimators=["rloo", "disarm"], S=[2],
    ...               seeds=[0, 1], budget_evals=400, batch_size=40, records=4)
    >>> len(study.train_cells())          # 2 estimators + the shared exact_elbo run, for 2 seeds
    6
    >>> study.references
    ('exact_elbo',)
    """

    name: str = "study"
    seed: int = 0
    split_seed: object = 0
    measure: tuple = ("train", "variance")
    data: tuple = ("bars",)
    K: tuple = (4,)
    hidden: tuple = ((32,),)
    method: tuple = ("amortized",)
    estimators: tuple = ("rloo", "disarm")
    S: tuple = (2,)
    seeds: tuple = (0, 1, 2)
    budget_evals: float = 4000
    batch_size: object = None
    encoder_hidden: tuple = (32,)
    valid_fraction: float = 0.25
    learning_rate: float = 0.01
    eval_size: object = None
    records: int = 10
    reference_steps: object = None
    checkpoints: tuple = (0.1, 0.5, 1.0)
    reps: int = 50
    rows: int = 40
    warmup: int = 20
    model_grad: bool = False
    _sizes: dict = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen dataclass)
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name: expected a non-empty string, got {self.name!r}")
        put("seed", check_positive_int(self.seed, "seed", minimum=0))
        if self.split_seed != "seed":
            put("split_seed", check_positive_int(self.split_seed, "split_seed (an int, or \"seed\")", minimum=0))
        put("measure", _choice(self.measure, "measure", MEASURES))
        put("data", _choice(self.data, "data", DATA_SETS))
        put("K", _ints(self.K, "K"))
        put("hidden", _hidden(self.hidden))
        put("method", _choice(self.method, "method", METHODS))
        put("estimators", tuple(_as_list(self.estimators, "estimators")))
        put("S", _ints(self.S, "S"))
        put("seeds", _ints(self.seeds, "seeds", minimum=0))
        for axis in ("data", "K", "hidden", "method", "estimators", "S", "seeds"):
            values = getattr(self, axis)
            if len(set(values)) != len(values):
                raise ValueError(f"grid: axis {axis!r} repeats a value: {list(values)}")
        if not (isinstance(self.budget_evals, (int, float)) and not isinstance(self.budget_evals, bool)
                and math.isfinite(self.budget_evals) and self.budget_evals > 0):
            raise ValueError(f"budget_evals: expected a positive number of decoder evaluations per datapoint, "
                             f"got {self.budget_evals!r}")
        if self.batch_size is not None:
            put("batch_size", check_positive_int(self.batch_size, "batch_size"))
        put("encoder_hidden", _hidden([self.encoder_hidden])[0])
        if not (isinstance(self.valid_fraction, float) and 0.0 < self.valid_fraction < 1.0):
            raise ValueError(f"valid_fraction: expected a float in (0, 1), got {self.valid_fraction!r}")
        if not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ValueError(f"learning_rate: expected a positive number, got {self.learning_rate!r}")
        if self.eval_size is not None:
            put("eval_size", check_positive_int(self.eval_size, "eval_size"))
        put("records", check_positive_int(self.records, "records"))
        if self.reference_steps is not None:
            put("reference_steps", check_positive_int(self.reference_steps, "reference_steps"))
        fractions = tuple(float(c) for c in _as_list(self.checkpoints, "checkpoints"))
        if any(not 0.0 <= c <= 1.0 for c in fractions):
            raise ValueError(f"checkpoints: expected fractions of the run in [0, 1], got {list(fractions)}")
        put("checkpoints", tuple(sorted(set(fractions))))
        put("reps", check_positive_int(self.reps, "reps", minimum=2))
        put("rows", check_positive_int(self.rows, "rows"))
        put("warmup", check_positive_int(self.warmup, "warmup", minimum=0))
        put("model_grad", bool(self.model_grad))
        self._check_estimators()
        self._check_sizes()

    # ------------------------------------------------------------------ checks
    def _check_estimators(self):
        from ..experiments.specs import build

        for spec in self.estimators:
            if spec in REFERENCES:
                continue
            est = build(spec)               # ValueError for an unknown name or option
            if getattr(est, "latent", "bernoulli") != "bernoulli":
                raise ValueError(f"estimators: {spec!r} is for {est.latent} latents; a study trains the "
                                 f"Bernoulli model")
            low = [s for s in self.S if s < getattr(est, "min_samples", 1)]
            if low:
                raise ValueError(f"estimators: {spec!r} needs S >= {est.min_samples}, but the S axis has "
                                 f"{low}; drop those S or the estimator")

    def _check_sizes(self):
        from .. import exact
        from .data import load_split

        sizes = {}
        for data in self.data:
            for k in self.K:
                x_train, x_valid = load_split(data, k, self.valid_fraction, self._split_seed(self.seeds[0]))
                exact.check_enumerable(k, x_train.shape[0], x_train.shape[1])
                sizes[(data, k)] = (int(x_train.shape[0]), int(x_train.shape[1]))
        object.__setattr__(self, "_sizes", sizes)
        for cell in self.train_cells():
            self.steps(cell)                # ValueError if the budget buys less than one step

    # ------------------------------------------------------------------ cells
    def _split_seed(self, seed):
        return seed if self.split_seed == "seed" else self.split_seed

    @property
    def references(self):
        """The reference runs in the study; exact_elbo is added as the shared run when variance is measured."""
        refs = [e for e in self.estimators if e in REFERENCES]
        if "variance" in self.measure and "exact_elbo" not in refs and self.plain_estimators:
            refs.append("exact_elbo")
        return tuple(refs)

    @property
    def plain_estimators(self):
        return tuple(e for e in self.estimators if e not in REFERENCES)

    def train_cells(self):
        """One training cell per grid point, estimator (or reference), S and seed, as dicts (cell keys)."""
        cells = []
        for data in self.data:
            for k in self.K:
                for hidden in self.hidden:
                    for seed in self.seeds:
                        for ref in self.references:
                            cells.append(dict(kind="train", data=data, K=k, hidden=list(hidden), method=ref,
                                              estimator=ref, S=None, seed=seed))
                        for method in self.method:
                            for spec in self.plain_estimators:
                                for s in self.S:
                                    cells.append(dict(kind="train", data=data, K=k, hidden=list(hidden),
                                                      method=method, estimator=spec, S=s, seed=seed))
        return cells

    def shared_cells(self):
        """Variance along the shared exact_elbo run: one cell per estimator, S, grid point and seed."""
        if "variance" not in self.measure:
            return []
        return [dict(cell, kind="shared") for cell in self.train_cells() if cell["S"] is not None]

    def size(self, data, k):
        """(N_train, L) of a data set at this split."""
        return self._sizes[(data, k)]

    def batch(self, data, k):
        n = self.size(data, k)[0]
        return n if self.batch_size is None else min(self.batch_size, n)

    def cost_per_step(self, cell):
        """Decoder evaluations per datapoint of the batch per step: S c, or 2**K for the references."""
        if cell["S"] is None:
            return 2 ** cell["K"]
        from ..experiments.specs import build
        from ..model import BernoulliLVM

        est = build(cell["estimator"])
        model = BernoulliLVM(cell["K"], self.size(cell["data"], cell["K"])[1], hidden=tuple(cell["hidden"]))
        return cell["S"] * int(est.cost(model))

    def steps(self, cell):
        """Training steps of a cell: what the budget buys (or ``reference_steps`` for a reference)."""
        if cell["S"] is None and self.reference_steps is not None:
            return self.reference_steps
        n = self.size(cell["data"], cell["K"])[0]
        per_step = self.batch(cell["data"], cell["K"]) * self.cost_per_step(cell)
        steps = int(math.floor(self.budget_evals * n / per_step + 1e-9))
        if steps < 1:
            raise ValueError(f"budget_evals: {self.budget_evals:g} decoder evaluations per datapoint buy less than "
                             f"one step of {cell['estimator']!r} (S = {cell['S']}, K = {cell['K']}): one step "
                             f"costs {per_step * 1.0 / n:g} per datapoint; raise budget_evals"
                             + (" or set reference_steps" if cell["S"] is None else ""))
        return steps

    # ------------------------------------------------------------------ identity
    def settings(self):
        """Everything but the grid: the settings every cell is computed with (JSON-able)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in AXES and not f.name.startswith("_")}
        out.pop("name")
        return json.loads(json.dumps(out))

    def to_dict(self):
        out = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        return json.loads(json.dumps(out))

    def config_hash(self):
        """SHA-256 (first 12 hex digits) of the whole study: changes when anything but the name changes."""
        d = self.to_dict()
        d.pop("name")
        return _digest(d)

    def cell_hash(self, cell):
        """Hash of a cell's key and the settings it is computed with: equal hashes -> interchangeable cells."""
        return _digest({"cell": cell, "settings": self.settings()})


def _digest(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib
        return tomllib
    import tomli
    return tomli


def _check_keys(table, allowed, where):
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        import difflib
        hint = difflib.get_close_matches(unknown[0], allowed, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ValueError(f"{where}: unknown {'axis' if where.endswith('[grid]') else 'key'} {unknown[0]!r}{extra}; "
                         f"expected one of {', '.join(allowed)}")


def from_dict(config, where="study"):
    """A ``Study`` from the nested dict of a TOML file (sections grid, train, variance)."""
    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected a table of settings, got {type(config).__name__}")
    _check_keys(config, _TOP, where)
    kwargs = {k: config[k] for k in ("name", "seed", "split_seed", "measure") if k in config}
    grid = config.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise ValueError(f"{where}: the [grid] section is missing or empty; it needs at least estimators "
                         f"(axes: {', '.join(AXES)})")
    _check_keys(grid, AXES, f"{where} [grid]")
    kwargs.update(grid)
    for section, allowed in (("train", _TRAIN), ("variance", _VARIANCE)):
        table = config.get(section, {})
        if not isinstance(table, dict):
            raise ValueError(f"{where}: [{section}] must be a table of settings")
        _check_keys(table, allowed, f"{where} [{section}]")
        kwargs.update(table)
    if "train" not in config or "budget_evals" not in config["train"]:
        raise ValueError(f"{where}: [train] budget_evals is required (decoder evaluations per training datapoint "
                         f"that every estimator may spend)")
    return Study(**kwargs)


def load(path):
    """Read a study file (TOML). ValueError names the line of a syntax error, or the bad setting."""
    import os

    if not os.path.isfile(path):
        raise ValueError(f"study: no such file {os.fspath(path)!r}")
    toml = _toml()
    with open(path, "rb") as fh:
        try:
            config = toml.load(fh)
        except toml.TOMLDecodeError as error:
            raise ValueError(f"study: {os.fspath(path)} is not valid TOML: {error}") from None
    return from_dict(config, where=os.path.basename(path))

