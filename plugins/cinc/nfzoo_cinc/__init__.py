"""nfzoo-cinc: the CInC conv (invertible k x k convolution), its wavefront inverse (torch and Triton),
the FInC unit and the cinc-flow architecture (arXiv:2512.04039)."""
__version__ = "0.1.0"
