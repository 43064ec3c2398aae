"""Learning and inference algorithms, each measured against exact enumeration.

One entry point, :func:`fit`, runs any of the registered :data:`METHODS`:

==========================  ==========================================================
``per_datapoint``           ELBO ascent, a free row of q-logits per datapoint (MeanField)
``amortized``               ELBO ascent with an encoder, theta and phi jointly (VAE)
``wake_sleep``              wake: theta on log p(x, z), z ~ q; sleep: phi on log q(z|x)
``reweighted_wake_sleep``   importance-weighted wake-theta / wake-phi (+ sleep-phi)
``exact_ml``                exact gradient of log p(x) (the ceiling)
``exact_elbo``              exact ELBO gradient (the bound without estimator noise)
==========================  ==========================================================

>>> import vi_lab
>>> model, params, x_train, x_valid = vi_lab.data.default(0)
>>> result = vi_lab.inference.fit(model, x_train, method="exact_ml", steps=5,
...                               x_valid=x_valid, progress=False)
>>> sorted(result.history)[:3]
['decoder_evals', 'grad_norm', 'log_px_train']

The same methods train the Gaussian-latent VAE (:class:`vi_lab.GaussianLVM`): pass the model, and
``fit`` builds the Gaussian families (:class:`vi_lab.gaussian.GaussianMeanField`,
:class:`vi_lab.variational.GaussianEncoder`), defaults to the ``reparam`` estimator and records
Gauss-Hermite quadrature curves (K <= 2) or labelled IWAE estimates (K > 2).

:func:`fit_local` finds the best mean-field q per datapoint for a fixed model;
:func:`load` reads a run written by :meth:`FitResult.save`.
"""
from .methods import METHODS, Method, wake_gradient, sleep_gradient, rws_gradient
from .result import FitResult, load
from .fit import fit
from .local import fit_local

__all__ = ["fit", "fit_local", "FitResult", "load", "METHODS", "Method",
           "wake_gradient", "sleep_gradient", "rws_gradient"]
