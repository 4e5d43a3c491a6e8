"""nfzoo-quad: the Quad-coupling layer (arXiv:2512.04039) and the quad-flow architecture."""
__version__ = "0.1.0"
