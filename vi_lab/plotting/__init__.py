"""Figures for vi_lab, in one style readable on a projector.

Importing this package does not import matplotlib; that happens when the first figure is
drawn (and picks the non-interactive Agg backend when there is no display). Every function
returns a :class:`matplotlib.figure.Figure`; save it with ``fig.savefig("name.pdf")``.

- Style: :func:`style` (``style("slides")``: 16:9, legends inside the axes), :func:`use_style`,
  :data:`OKABE_ITO`, :data:`LOOKS` (estimator -> colour, line style, marker, the same in every
  figure), :data:`FAMILIES` and :func:`panels` (at most six series per panel), :func:`line_for`.
- Experiments: :func:`figures_for` (all figures of a run; :func:`figure_makers` undrawn), :func:`variance_vs_samples`,
  :func:`variance_at_equal_cost`, :func:`variance_vs_checkpoint`,
  :func:`bias_variance_vs_tau`, :func:`train_compare_curves`, :func:`tightness_gaps`,
  :func:`iwae_vs_k`.
- General: :func:`history`, :func:`posterior_bars`, :func:`image_grid`.

Plotting never computes anything expensive: pass it the tables and arrays the
computation modules return.
"""
from .style import (OKABE_ITO, MARKERS, LINESTYLES, LOOKS, FAMILIES, NATS, SLIDE_SIZE, rc_params, style, use_style,
                    current_kind, color_for, marker_for, line_for, family_of, panels, panel_lines, new_figure)
from .experiments import variance_vs_samples, variance_at_equal_cost, variance_vs_checkpoint, bias_variance_vs_tau
from .training import train_compare_curves, tightness_gaps, iwae_vs_k
from .runs import figures_for, figure_makers
from .general import history, posterior_bars, image_grid
from .gaussian import latent_manifold, encoded_means, vae_manifold, gaussian_learning_curves

__all__ = ["OKABE_ITO", "MARKERS", "LINESTYLES", "LOOKS", "FAMILIES", "NATS", "SLIDE_SIZE", "rc_params", "style",
           "use_style", "current_kind", "color_for", "marker_for", "line_for", "family_of", "panels", "panel_lines", "new_figure", "variance_vs_samples", "variance_at_equal_cost", "variance_vs_checkpoint", "figures_for",
           "figure_makers", "bias_variance_vs_tau",
           "train_compare_curves", "tightness_gaps", "iwae_vs_k", "history", "posterior_bars", "image_grid"]
