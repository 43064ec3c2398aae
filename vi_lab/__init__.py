"""vi_lab: variational inference on Bernoulli latent-variable models, measured against exact enumeration."""
__version__ = "0.1.0"

from .model import BernoulliLVM
from .gaussian import GaussianLVM
from . import data, exact, gaussian, nn, variational
from . import estimators, toy
from . import inference, objectives, optimizers
from . import exercises, experiments, plotting

__all__ = ["BernoulliLVM", "GaussianLVM", "data", "exact", "gaussian", "nn", "variational", "estimators", "toy",
           "inference", "objectives", "optimizers", "exercises", "experiments", "plotting", "__version__"]
