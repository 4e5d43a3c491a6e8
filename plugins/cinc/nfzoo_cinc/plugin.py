"""nfzoo hooks of nfzoo-cinc (lazy targets: registering imports no torch)."""
import nfzoo

PAPER = "Nagar, Fast & Efficient Normalizing Flows (arXiv:2512.04039)"


@nfzoo.hookimpl
def register_bijectors(register):
    register("cinc-conv", "nfzoo_cinc.conv:CInCConv2d",
             description="invertible k x k conv (top-left padding, triangular own tap), wavefront inverse",
             paper=PAPER, example=({"channels": 4}, (3, 4, 5, 7)))
    register("cinc-conv-1x9", "nfzoo_cinc.conv:CInCConv2d",
             description="CInC conv, dilated, on a one-row image (the kit's edge case)",
             paper=PAPER, example=({"channels": 3, "dilation": 2}, (1, 3, 1, 9)))
    register("finc-unit", "nfzoo_cinc.conv:FInCUnit",
             description="four corner-padded unit-diagonal convs on four channel groups, one solve",
             paper=PAPER, example=({"channels": 8}, (3, 8, 5, 7)))


@nfzoo.hookimpl
def register_architectures(register):
    register("cinc-flow", "nfzoo_cinc.models:cinc_flow",
             description="Glow skeleton with CInC 3x3 convs and quad (or affine) coupling", paper=PAPER)
    register("finc-flow", "nfzoo_cinc.finc_models:finc_flow",
             description="Glow skeleton with FInC units (four corner-padded 3x3 convs, one wavefront solve) "
                         "and affine (or quad) coupling", paper=PAPER)


@nfzoo.hookimpl
def register_benchmarks(register):
    register("cinc", "nfzoo_cinc.bench:bench_cinc",
             description="CInC inverse: wavefront vs sequential back-substitution vs dense solve; "
                         "cinc-flow vs glow sampling")
