"""The experiments: gradient variance, bound tightness, training comparisons.

Each experiment is a Python function that returns a tidy :class:`Table` and a ``vi-lab``
subcommand (:mod:`vi_lab.experiments.cli`) that runs it, prints the table and writes a run
directory (:class:`RunWriter`) with tables, figures, configuration and model parameters.

- :func:`variance`, :func:`tau_sweep`: variance, bias, MSE, SNR and cost of gradient estimators.
- :func:`tightness`, :func:`tightness_summary`, :func:`iwae_curve`: log p(x), ELBOs, gaps, IWAE.
- :func:`train_compare`: learning curves of estimators and reference methods, same budget.
- :func:`compare`: the main job (small variance + tightness on the embedded default data).
- :func:`train_checkpoints`, :func:`load_data`: the default problems.

Computation only: figures are in :mod:`vi_lab.plotting`, which these modules never import.
"""
from .table import Table
from .results import RunWriter, read_table, read_config, load_params, save_params
from .specs import ALIASES, default_specs
from .problem import Problem, load_data, make_model, train_checkpoints
from .variance import variance, tau_sweep, gradient_stats
from .tightness import tightness, tightness_summary, iwae_curve, sleep_encoder

__all__ = ["Table", "RunWriter", "read_table", "read_config", "load_params", "save_params", "ALIASES",
           "default_specs", "Problem", "load_data", "make_model", "train_checkpoints", "variance", "tau_sweep",
           "gradient_stats", "tightness", "tightness_summary", "iwae_curve", "sleep_encoder"]
from .results import Results
from .compare import run_variance, run_tightness, compare, variance_summary
from .train_compare import train_compare, REFERENCE_METHODS

__all__ += ["Results", "run_variance", "run_tightness", "compare", "variance_summary", "train_compare",
            "REFERENCE_METHODS"]
