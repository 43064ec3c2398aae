"""vi_lab: variational inference on Bernoulli latent-variable models, measured against exact enumeration."""
import importlib

__version__ = "0.1.0"

_SUBMODULES = ("data", "exact", "gaussian", "nn", "variational", "estimators", "toy", "inference", "objectives",
               "optimizers", "exercises", "experiments", "plotting")
_CLASSES = {"BernoulliLVM": "model", "GaussianLVM": "gaussian"}

__all__ = ["BernoulliLVM", "GaussianLVM", *_SUBMODULES, "__version__"]


def __getattr__(name):
    # submodules are imported on first use, so that `vi-lab` starts (and can be interrupted) cleanly
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _CLASSES:
        return getattr(importlib.import_module(f".{_CLASSES[name]}", __name__), name)
    raise AttributeError(f"module 'vi_lab' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
