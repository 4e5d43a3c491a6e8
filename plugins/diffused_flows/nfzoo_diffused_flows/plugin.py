"""nfzoo hooks of nfzoo-diffused-flows (lazy targets: registering imports neither torch nor diffusers)."""
import nfzoo

PAPER = "Diffused-Flows: normalizing flows with a latent diffusion prior (papers/001)"
DDPM = "Ho, Jain & Abbeel 2020, Denoising Diffusion Probabilistic Models"
_M = "nfzoo_diffused_flows.models"
_S = "nfzoo_diffused_flows.samplers"


@nfzoo.hookimpl
def register_priors(register):
    register("diffusion", "nfzoo_diffused_flows.diffusion:DiffusionPrior",
             description="DDPM over image-shaped latents (diffusers UNet2DModel); log_prob = -variational bound",
             paper=DDPM)


@nfzoo.hookimpl
def register_samplers(register):
    register("ddpm-ancestral", f"{_S}:ancestral", paper=DDPM,
             description="diffusion models: DDPM's ancestral sampler (all T steps; --steps S respaces)")
    register("ddim", f"{_S}:ddim", paper="Song, Meng & Ermon 2021, DDIM",
             description="diffusion models: DDIM with eta = 0 (deterministic for a seed), --steps S")
    register("dpm-solver++", f"{_S}:dpm_solver_pp", paper="Lu et al. 2022, DPM-Solver++",
             description="diffusion models: 2nd-order multistep DPM-Solver++, --steps S")


@nfzoo.hookimpl
def register_architectures(register):
    register("ddpm", f"{_M}:ddpm", paper=DDPM,
             description="pixel-space DDPM baseline (T=1000, linear betas, eps prediction, diffusers U-Net)")
    register("diffused-flows", f"{_M}:diffused_flows", paper=PAPER,
             description="a glow / nsf flow with a diffusion prior on its image-shaped latent "
                         "(objectives elbo, two-stage, paper)")


@nfzoo.hookimpl
def register_benchmarks(register):
    register("diffusion", "nfzoo_diffused_flows.bench:bench_diffusion",
             description="oracle FID vs time per 100 samples: ddpm and diffused-flows (ancestral, DDIM at "
                         "100/50/20/10 steps) beside nsf and glow; writes a PNG plot")
