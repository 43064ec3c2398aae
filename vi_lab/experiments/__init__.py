"""The experiments: gradient variance, bound tightness, training comparisons.

Each experiment is a Python function that returns a long-form (tidy) :class:`pandas.DataFrame`
(or, for the whole runs behind the ``vi-lab`` subcommands, a :class:`Results` mapping names to
DataFrames, whose ``save(out)`` writes a run directory: tables as CSV and JSON (and Parquet with
pyarrow), figures as PNG and PDF, ``config.json`` and the model parameters). Print one with
:func:`format_table`; drop its wall-clock columns with :func:`without_wall_clock` to compare two
runs with the same seed exactly.

Measurements on a model you already have:

- :func:`variance`, :func:`tau_sweep`: variance, bias, MSE, SNR and cost of gradient
  estimators against the exact gradient; :func:`gradient_stats` for your own estimates.
- :func:`tightness` (+ :func:`tightness_summary`, :func:`iwae_curve`): log p(x), the ELBOs of
  the amortized, best mean-field and sleep-phase q, their gaps, IWAE bounds.

Whole runs on the default problems (what the subcommands run):

- :func:`run_variance` (``vi-lab variance``), :func:`run_tightness` (``vi-lab tightness``),
  :func:`train_compare` (``vi-lab train-compare``), :func:`compare` (``vi-lab compare``, the
  main job).
- :func:`load_data`, :func:`make_model`, :func:`train_checkpoints`: the problems themselves.

Computation only: the figures are drawn by :mod:`vi_lab.plotting`, which these modules never import.
"""
from .table import WALL_CLOCK_COLUMNS, format_table, frame, read_table, without_wall_clock, write_table
from .results import Results, RunWriter, read_config, load_params, save_params
from .specs import ALIASES, default_specs
from .problem import Problem, load_data, make_model, train_checkpoints
from .variance import variance, tau_sweep, gradient_stats
from .tightness import tightness, tightness_summary, iwae_curve, sleep_encoder
from .compare import run_variance, run_tightness, compare, variance_summary
from .train_compare import train_compare, REFERENCE_METHODS
from .gaussian import gaussian_variance, gaussian_tightness, gaussian_train_compare, best_gaussian_q

__all__ = ["WALL_CLOCK_COLUMNS", "format_table", "frame", "without_wall_clock", "write_table", "read_table",
           "Results", "RunWriter", "read_config", "load_params", "save_params", "ALIASES", "default_specs", "Problem", "load_data", "make_model", "train_checkpoints", "variance", "tau_sweep",
           "gradient_stats", "tightness", "tightness_summary", "iwae_curve", "sleep_encoder", "run_variance",
           "run_tightness", "compare", "variance_summary", "train_compare", "REFERENCE_METHODS"]
