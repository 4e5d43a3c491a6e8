"""nfzoo hooks of nfzoo-tarflow (lazy targets: registering imports no torch)."""
import nfzoo

PAPER = "Zhai et al. 2024, Normalizing Flows are Capable Generative Models (TarFlow, arXiv:2412.06329)"
_TINY = {"image_shape": (1, 4, 4), "patch_size": 2, "hidden": 16, "layers": 1, "heads": 2}


@nfzoo.hookimpl
def register_bijectors(register):
    register("tarflow-block", "nfzoo_tarflow.flow:TarFlowBlock", paper=PAPER,
             description="autoregressive affine flow over image patches, conditioned by a causal Transformer "
                         "(key/value-cached inverse)",
             example=({**_TINY, "flip": True}, (2, 1, 4, 4)))
    register("tarflow", "nfzoo_tarflow.flow:TarFlow", paper=PAPER,
             description="a stack of TarFlow blocks, token order reversed in every other block",
             example=({**_TINY, "blocks": 2}, (2, 1, 4, 4)))


@nfzoo.hookimpl
def register_samplers(register):
    register("tarflow", "nfzoo_tarflow.samplers:TarFlowSampler", paper=PAPER,
             description="TarFlow models: KV-cache inverse or Jacobi decoding, score denoising, classifier-free "
                         "guidance (options guidance, guidance_anneal, attn_temp, jacobi, jacobi_tol, jacobi_iters)")


@nfzoo.hookimpl
def register_architectures(register):
    register("tarflow", "nfzoo_tarflow.models:tarflow", paper=PAPER,
             description="TarFlow: causal-Transformer autoregressive flow blocks over patches, noise "
                         "augmentation, denoised samples")


@nfzoo.hookimpl
def register_benchmarks(register):
    register("tarflow", "nfzoo_tarflow.bench:bench_tarflow",
             description="seconds per 100 samples: tarflow-mnist5k against ddpm-mnist5k (ancestral, DDIM 50) "
                         "and glow-mnist5k")
    register("tarflow-jacobi", "nfzoo_tarflow.jacobi_bench:bench_jacobi",
             description="Jacobi decoding of the zoo's TarFlows against the sequential KV-cache inverse: decode "
                         "time, iterations per block and oracle FID at several tolerances")
