"""vi_lab: variational inference on Bernoulli latent-variable models, measured against exact enumeration."""
__version__ = "0.1.0"

from .model import BernoulliLVM
from .gaussian import GaussianLVM
from . import gaussian
from . import exact, variational, data, nn
from . import estimators, toy
from . import objectives, optimizers, inference
from . import experiments, plotting

__all__ = ["BernoulliLVM", "GaussianLVM", "gaussian", "exact", "variational", "data", "nn", "estimators", "toy", "objectives", "optimizers", "inference", "__version__"]
