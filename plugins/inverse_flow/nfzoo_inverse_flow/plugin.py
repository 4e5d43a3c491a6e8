"""nfzoo hooks of nfzoo-inverse-flow (lazy targets: registering imports no torch)."""
import importlib.util

import nfzoo

# Inverse-Flow is built on the CInC solve: without nfzoo-cinc this plugin is reported as broken (by
# `nfzoo plugins`) and registers nothing, instead of registering models that cannot be built.
if importlib.util.find_spec("nfzoo_cinc") is None:
    raise ImportError("nfzoo-inverse-flow needs the nfzoo-cinc plugin (the wavefront solve): "
                      "pip install nfzoo-cinc")

PAPER = "Nagar, Fast & Efficient Normalizing Flows (arXiv:2512.04039)"


@nfzoo.hookimpl
def register_bijectors(register):
    register("inverse-conv", "nfzoo_inverse_flow.conv:InverseConv2d",
             description="inverse of a CInC conv: solve when normalizing, one conv2d when sampling",
             paper=PAPER, example=({"channels": 4}, (3, 4, 5, 7)))


@nfzoo.hookimpl
def register_architectures(register):
    register("inverse-flow", "nfzoo_inverse_flow.models:inverse_flow",
             description="Glow skeleton with inverse convs: sampling is convolutions only", paper=PAPER)


@nfzoo.hookimpl
def register_benchmarks(register):
    register("sampling", "nfzoo_inverse_flow.bench:bench_sampling",
             description="sampling and training-step time: glow vs cinc-flow vs inverse-flow")
