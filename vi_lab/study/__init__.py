"""Studies: multi-seed, equal-compute estimator comparisons, run cell by cell on every core or a cluster.

>>> from vi_lab.study import Study, run                                   # doctest: +SKIP
>>> study = Study(data=["bars"], K=[4], estimators=["rloo", "disarm", "exact_elbo"], S=[2],
...               seeds=[0, 1, 2], budget_evals=2000, batch_size=40)
>>> result = run(study, "runs/my-study", jobs=2)
>>> print(result.summary_text())

A study is a grid (``Study``, or a TOML file read by ``load``); ``run`` trains every
cell on an equal budget of decoder evaluations, measures gradient variance at checkpoints, saves each
finished cell at once (a rerun resumes), and aggregates across seeds into pandas tables
(``vi_lab.study.aggregate``). ``vi-lab study FILE.toml`` is the command-line form
(``vi_lab.study.cli``); figures are in ``vi_lab.plotting.study``.
"""
from .spec import Study, load, from_dict, REFERENCES, DATA_SETS, METHODS, MEASURES
from .run import run, StudyResult, cell_name, load_cells
from .aggregate import tables, format_summary, t_interval

__all__ = ["Study", "load", "from_dict", "run", "StudyResult", "cell_name", "load_cells", "tables",
           "format_summary", "t_interval", "REFERENCES", "DATA_SETS", "METHODS", "MEASURES"]
