"""The plugin module named by the entry point. It imports no torch: targets are lazy strings."""
import nfzoo


@nfzoo.hookimpl
def register_bijectors(register):
    register("leaky-affine", "nfzoo_example.layers:LeakyAffine",
             description="element-wise leaky-ReLU-shaped bijection with a learned slope per channel",
             example=({"channels": 4}, (2, 4, 6, 5)))


@nfzoo.hookimpl
def register_architectures(register):
    register("leaky-glow", "nfzoo_example.layers:leaky_glow",
             description="Glow with a LeakyAffine layer after every step (example plugin)")
