"""nfzoo-cinc: the CInC conv (invertible k x k convolution), its wavefront inverse (torch and Triton),
the FInC unit and the cinc-flow and finc-flow architectures (arXiv:2512.04039).

    from nfzoo_cinc import CInCConv2d, wavefront_solve
    conv = CInCConv2d(4)
    z, logdet = conv(x)                        # z = M x, logdet = H W sum_c log|diag_c|
    x_back = wavefront_solve(z, conv.weight()) # M^-1 z, in H + W - 1 sequential steps

Importing this package imports no torch; the names below load on first use.
"""
from nfzoo.lazy import lazy_exports

__version__ = "0.2.0"
_LAZY = {
    "CInCConv2d": "conv", "FInCUnit": "conv", "MaskedKernel": "conv",
    "cinc_flow": "models", "finc_flow": "finc_models", "conv_step_flow": "models", "make_coupling": "models",
    "conv_tl": "solve", "conv_tl_transposed": "solve", "wavefront_solve": "solve",
    "sequential_solve": "solve",
}
__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
