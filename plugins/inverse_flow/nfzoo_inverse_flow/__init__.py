"""nfzoo-inverse-flow: Inverse-Flow, a flow whose sampling direction is plain convolutions
(arXiv:2512.04039)."""
__version__ = "0.1.0"
