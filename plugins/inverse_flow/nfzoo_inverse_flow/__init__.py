"""nfzoo-inverse-flow: Inverse-Flow, a flow whose sampling direction is plain convolutions
(arXiv:2512.04039).

    from nfzoo_inverse_flow import InverseConv2d
    conv = InverseConv2d(4)                    # forward: the wavefront solve; inverse: one conv2d

Importing this package imports no torch; the names below load on first use.
"""
from nfzoo.lazy import lazy_exports

__version__ = "0.2.0"
_LAZY = {"InverseConv2d": "conv", "InverseConvSolve": "conv", "inverse_conv_solve": "conv",
         "inverse_flow": "models"}
__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
