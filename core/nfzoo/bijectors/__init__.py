"""The core's bijectors."""
from .basic import ActNorm, InvConv1x1, Rescale, Squeeze
from .coupling import AdditiveCoupling, AffineCoupling, CouplingNet, SplineCoupling
from .multiscale import GaussianSplit, Level, MultiScale, TopGaussian
from ..interfaces import Composite

__all__ = ["ActNorm", "InvConv1x1", "Rescale", "Squeeze", "AdditiveCoupling", "AffineCoupling",
           "CouplingNet", "SplineCoupling", "GaussianSplit", "Level", "MultiScale", "TopGaussian",
           "Composite"]
