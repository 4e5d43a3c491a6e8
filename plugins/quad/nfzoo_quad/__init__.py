"""nfzoo-quad: the Quad-coupling layer (arXiv:2512.04039) and the quad-flow architecture.

    from nfzoo_quad import QuadCoupling
    layer = QuadCoupling(channels=8, hidden=32)

Importing this package imports no torch; the names below load on first use.
"""
from nfzoo.lazy import lazy_exports

__version__ = "0.2.0"
_LAZY = {"QuadCoupling": "coupling", "split_sizes": "coupling", "quad_flow": "models"}
__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
