"""Checkers for the exercises at the end of each notebook.

Each checker takes the student's function, runs it on small problems whose exact answer
vi_lab computes by enumeration (or closed form / quadrature), and returns a
:class:`CheckResult` that prints as a verdict with the reasons::

    from vi_lab import exercises
    exercises.check_log_marginal(my_log_marginal)

One submodule per notebook; every checker is re-exported here. The prediction questions of
all notebooks share one checker, :func:`check_answer` (see :mod:`vi_lab.exercises.questions`)::

    exercises.check_answer("05.toy_gradient", 0.025)
"""
from . import amortized, bernoulli_model, capstone, elbo, estimators, questions, tightness, wake_sleep
from ._check import CheckResult, compare_arrays, compare_monte_carlo, run_student
from .bernoulli_model import check_log_marginal, check_posterior_marginals, check_sample
from .elbo import check_elbo, check_elbo_estimate, check_elbo_grad_logits
from .amortized import check_encoder_logits, check_amortization_gap, check_encoder_grad
from .wake_sleep import check_inclusive_kl, check_rws_wake_phi
from .estimators import (check_score_function, check_relaxed_sample, check_concrete_grad,
                         check_leave_one_out, check_disarm)
from .tightness import check_iwae, check_gaps
from .capstone import check_chunked_log_marginal, check_effective_sample_size
from .questions import QUESTIONS, check_answer
from .vae import check_reparam_sample, check_reparam_elbo, check_reparam_gradient

# Checkers by notebook, in the order the notebooks use them.
CHECKERS = {
    "01_bernoulli_latent_model": ["check_log_marginal", "check_posterior_marginals", "check_sample"],
    "02_elbo_and_per_datapoint_vi": ["check_elbo", "check_elbo_estimate", "check_elbo_grad_logits"],
    "03_amortized_vi": ["check_encoder_logits", "check_amortization_gap", "check_encoder_grad"],
    "04_wake_sleep": ["check_inclusive_kl", "check_rws_wake_phi"],
    "05_score_function_vs_reparametrization": ["check_score_function", "check_relaxed_sample",
                                               "check_concrete_grad"],
    "06_variance_reduction": ["check_leave_one_out", "check_disarm"],
    "07_elbo_tightness": ["check_iwae", "check_gaps"],
    "08_capstone_digits": ["check_chunked_log_marginal", "check_effective_sample_size"],
    "09_variational_autoencoder": ["check_reparam_sample", "check_reparam_elbo", "check_reparam_gradient"],
}

__all__ = ["CheckResult", "compare_arrays", "compare_monte_carlo", "run_student", "CHECKERS", "QUESTIONS",
           "check_answer"] + [
    name for names in CHECKERS.values() for name in names]
