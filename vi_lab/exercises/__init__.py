"""Checkers for the exercises at the end of each notebook.

Each checker takes the student's function, runs it on small problems whose exact answer
vi_lab computes by enumeration (or closed form / quadrature), and returns a
:class:`CheckResult` that prints as a verdict with the reasons::

    from vi_lab import exercises
    exercises.check_log_marginal(my_log_marginal)

One submodule per notebook; every checker is re-exported here.
"""
from ._check import CheckResult, compare_arrays, compare_monte_carlo, run_student  # noqa: F401
from .bernoulli_model import check_log_marginal, check_posterior_marginals, check_sample  # noqa: F401
from .elbo import check_elbo, check_elbo_estimate, check_elbo_grad_logits  # noqa: F401
from .amortized import check_encoder_logits, check_amortization_gap, check_encoder_grad  # noqa: F401
from .wake_sleep import check_inclusive_kl, check_rws_wake_phi  # noqa: F401
from .estimators import check_score_function, check_relaxed_sample, check_concrete_grad, check_leave_one_out, check_disarm  # noqa: F401
from .tightness import check_iwae, check_gaps  # noqa: F401

__all__ = ["CheckResult", "compare_arrays", "compare_monte_carlo", "run_student"]
