"""nfzoo hooks of nfzoo-quad (lazy targets: registering imports no torch)."""
import nfzoo

PAPER = "Nagar, Fast & Efficient Normalizing Flows (arXiv:2512.04039)"


@nfzoo.hookimpl
def register_bijectors(register):
    register("quad-coupling", "nfzoo_quad.coupling:QuadCoupling",
             description="coupling on four channel blocks, three transformed (parallel forward)",
             paper=PAPER, example=({"channels": 5, "hidden": 8}, (3, 5, 5, 7)))


@nfzoo.hookimpl
def register_architectures(register):
    register("quad-flow", "nfzoo_quad.models:quad_flow",
             description="Glow with Quad-coupling (actnorm, LU 1x1 conv, quad coupling)", paper=PAPER)
