"""The core's own registrations. They go through the same hooks as any plugin; targets are lazy
strings, so loading this module imports no torch."""
from nfzoo.registry.hookspecs import hookimpl

_B = "nfzoo.flows.bijectors"
NICE = "Dinh, Krueger, Bengio 2015 (arXiv:1410.8516)"
REALNVP = "Dinh, Sohl-Dickstein, Bengio 2017 (arXiv:1605.08803)"
GLOW = "Kingma, Dhariwal 2018 (arXiv:1807.03039)"
NSF = "Durkan, Bekasov, Murray, Papamakarios 2019 (arXiv:1906.04032)"


@hookimpl
def register_bijectors(register):
    """The core's bijectors (ActNorm, LU 1x1 conv, squeeze, couplings, ...), each with the testing kit's
    example (constructor kwargs, input shape)."""
    img = (2, 4, 6, 5)  # batch 2, 4 channels, non-square odd 6x5: the testing kit's default example
    register("actnorm", f"{_B}:ActNorm", description="per-channel affine with data-dependent init",
             paper=GLOW, example=({"channels": 4}, img))
    register("invconv1x1", f"{_B}:InvConv1x1", description="LU-parametrized invertible 1x1 conv",
             paper=GLOW, example=({"channels": 4}, img))
    register("squeeze", f"{_B}:Squeeze", description="space-to-depth 2x2", example=({}, (2, 3, 6, 4)))
    register("rescale", f"{_B}:Rescale", description="diagonal scaling (NICE's S layer)", paper=NICE,
             example=({"shape": (4, 6, 5)}, img))
    register("additive-coupling", f"{_B}:AdditiveCoupling", description="additive coupling",
             paper=NICE, example=({"channels": 4, "hidden": 8}, img))
    register("affine-coupling", f"{_B}:AffineCoupling",
             description="affine coupling (channel or checkerboard mask; sigmoid or tanh scale)",
             paper=GLOW, example=({"channels": 4, "hidden": 8}, img))
    register("affine-coupling-checkerboard", f"{_B}:AffineCoupling",
             description="RealNVP affine coupling with a checkerboard mask and tanh scale", paper=REALNVP,
             example=({"channels": 3, "hidden": 8, "mask": "checkerboard", "parity": 1, "scale": "tanh"},
                      (2, 3, 6, 5)))
    register("spline-coupling", f"{_B}:SplineCoupling",
             description="rational-quadratic spline coupling", paper=NSF,
             example=({"channels": 4, "hidden": 8, "bins": 4}, img))


@hookimpl
def register_priors(register):
    """The core's priors: `standard-normal` N(0, I) and the learned `diagonal-gaussian`."""
    register("standard-normal", "nfzoo.flows.priors:StandardNormal", description="N(0, I)")
    register("diagonal-gaussian", "nfzoo.flows.priors:DiagonalGaussian",
             description="learned diagonal gaussian, optionally one per class")


@hookimpl
def register_samplers(register):
    """The core's sampler: `ancestral` (z from the prior at temperature T; the model decodes)."""
    register("ancestral", "nfzoo.flows.samplers:AncestralSampler",
             description="z from the prior at temperature T, then the flow's inverse")


@hookimpl
def register_architectures(register):
    """The classic flows (NICE, RealNVP, Glow, NSF) as architectures: builders of FlowModels."""
    a = "nfzoo.flows.architectures"
    register("nice", f"{a}:nice", description="NICE: additive coupling + rescaling", paper=NICE)
    register("realnvp", f"{a}:realnvp", description="RealNVP: affine coupling, checkerboard/channel "
             "masks, multi-scale", paper=REALNVP)
    register("glow", f"{a}:glow", description="Glow: actnorm, LU 1x1 conv, affine coupling, multi-scale",
             paper=GLOW)
    register("nsf", f"{a}:nsf", description="Neural Spline Flow: rational-quadratic spline coupling",
             paper=NSF)


@hookimpl
def register_benchmarks(register):
    """The core's benchmarks for `nfzoo bench`: `train` (against normflows), `scaling`, `export` (onnxruntime
    against torch eager) and `compile`."""
    register("train", "nfzoo.bench.train:bench_train",
             description="Glow training throughput and bpd: nfzoo vs normflows (same size, data, steps)")
    register("scaling", "nfzoo.bench.scaling:bench_scaling",
             description="training images/s: 1 vs 2 processes (torchrun, DDP) on the CPU; with --device "
                         "cuda, 1 GPU in float32 vs bf16 autocast")
    register("export", "nfzoo.bench.export:bench_export",
             description="sampling: the exported ONNX sampler (onnxruntime) vs torch eager for the zoo's models, "
                         "and exported inverse-flow vs glow eager at 32x32x3")
    register("compile", "nfzoo.bench.compile:bench_compile",
             description="sampling and bpd of the zoo's glow-mnist5k and inverse-flow-mnist5k: eager vs "
                         "torch.compile (compile time reported apart)")
