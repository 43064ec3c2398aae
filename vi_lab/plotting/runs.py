"""Which figures a run directory gets: :func:`figures_for` draws them, :func:`figure_makers` lists them undrawn.

The run directory writer (:class:`vi_lab.experiments.results.RunWriter`, through
``Results.save``) asks :func:`figure_makers` for the figures of a run, so that it can draw them in
separate processes, one figure per worker.
"""
from functools import partial

import numpy as onp

from ._figure_helpers import _col
from .experiments import bias_variance_vs_tau, variance_at_equal_cost, variance_vs_checkpoint, variance_vs_samples
from .training import iwae_vs_k, tightness_gaps, train_compare_curves

__all__ = ["figures_for", "figure_makers"]


def figures_for(results):
    """Every figure of an experiment run, by file stem.

    Parameters
    ----------
    results : vi_lab.experiments.results.Results
        What :func:`vi_lab.experiments.run_variance`, ``run_tightness``, ``train_compare`` or
        ``compare`` returned.

    Returns
    -------
    dict of str -> matplotlib.figure.Figure
        ``learning_curves`` is drawn against decoder evaluations and
        ``learning_curves_wall_time`` against wall time; ``bias_variance_vs_samples`` puts the
        q-gradient's squared bias next to its variance.
    """
    return {key: draw() for key, draw in figure_makers(results).items()}


def figure_makers(results):
    """What :func:`figures_for` draws, undrawn: file stem -> a function of no arguments drawing it.

    Lets a caller draw the figures of one run in separate processes (the run directory writer
    does, one figure per worker).
    """
    figs = {}
    if "variance" in results and len(results["variance"]):
        table = results["variance"]
        has_bias = "bias2_q" in table.columns and onp.isfinite(_col(table, "bias2_q")).any()
        figs["variance_vs_samples"] = partial(variance_vs_samples, table)
        if has_bias:
            figs["bias_variance_vs_samples"] = partial(variance_vs_samples, table, blocks=("q",), bias=True)
        figs["variance_at_equal_cost"] = partial(variance_at_equal_cost, table)
        if "checkpoint" in table.columns and table["checkpoint"].dropna().nunique() > 1:
            figs["variance_vs_checkpoint"] = partial(variance_vs_checkpoint, table)
    if "tau" in results and len(results["tau"]):
        figs["bias_variance_tau"] = partial(bias_variance_vs_tau, results["tau"])
    if "tightness" in results:
        figs["tightness_gaps"] = partial(tightness_gaps, results["tightness"])
    if "iwae" in results:
        figs["iwae_vs_k"] = partial(iwae_vs_k, results["iwae"])
    if "history" in results:
        history = results["history"]
        note = history.attrs.get("overfitting_control") or getattr(results, "config", {}).get("overfitting_control")
        if {"decoder_evals", "evals_per_datapoint"} & set(history.columns):
            figs["learning_curves"] = partial(train_compare_curves, history, note=note)
            figs["learning_curves_wall_time"] = partial(train_compare_curves, history, x="seconds", note=note)
        else:
            figs["learning_curves"] = partial(train_compare_curves, history, x="seconds", note=note)
    return figs
