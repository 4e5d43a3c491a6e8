"""The core's bijectors."""
from nfzoo.flows.bijectors.basic import ActNorm, InvConv1x1, Rescale, Squeeze
from nfzoo.flows.bijectors.coupling import AdditiveCoupling, AffineCoupling, CouplingNet, SplineCoupling
from nfzoo.flows.bijectors.multiscale import GaussianSplit, Level, MultiScale, TopGaussian
from nfzoo.flows.interfaces import Composite

__all__ = ["ActNorm", "InvConv1x1", "Rescale", "Squeeze", "AdditiveCoupling", "AffineCoupling",
           "CouplingNet", "SplineCoupling", "GaussianSplit", "Level", "MultiScale", "TopGaussian",
           "Composite"]
