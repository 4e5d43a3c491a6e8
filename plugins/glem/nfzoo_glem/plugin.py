"""nfzoo hooks of nfzoo-glem (lazy targets: registering imports no torch)."""
import nfzoo

PAPER = "GLEM: Gaussians Learned using Expectation Maximization (papers/003)"

# The paper-scale setting for CIFAR-100 (`nfzoo train glem --preset cifar100 --dataset cifar100`): a Glow
# backbone of 3 levels x 32 steps with 512 hidden channels, the public psi (a=1, b=1, c=0.25), Adamax at
# 1e-3 with 1000 warm-up steps (the paper: Adamax, warm-up over 1000 iterations; its lr halvings and SWA
# are replaced by a cosine decay here).
PRESETS = {
    "cifar100": {
        "model": {"levels": 3, "steps": 32, "hidden": 512, "num_classes": 100, "a": 1.0, "b": 1.0, "c": 0.25,
                  "preprocess": "shift", "rfcm_rank": 32},
        "train": {"optimizer": "adamax", "lr": 1e-3, "warmup_steps": 1000, "lr_schedule": "cosine",
                  "batch_size": 64, "epochs": 200},
    },
    # glem-mnist5k's recipe (the architecture's defaults carry its GLEM settings)
    "mnist5k": {
        "model": {"levels": 2, "steps": 4, "hidden": 64, "num_classes": 10},
        "train": {"lr": 2e-3, "lr_schedule": "cosine", "batch_size": 64, "epochs": 80, "seed": 0},
    },
}


@nfzoo.hookimpl
def register_priors(register):
    register("multi-gaussian", "nfzoo_glem.prior:MultiGaussianPrior",
             description="GLEM: one learned diagonal gaussian per class, psi-reparametrized covariances",
             paper=PAPER)


@nfzoo.hookimpl
def register_samplers(register):
    register("rfcm", "nfzoo_glem.samplers:RFCMSampler",
             description="GLEM models: sample the re-estimated full-covariance class gaussians (RFCM)",
             paper=PAPER)


@nfzoo.hookimpl
def register_architectures(register):
    register("glem", "nfzoo_glem.models:glem", paper=PAPER, presets=PRESETS,
             description="Glow-style flow with learned class gaussians (GLEM): conditional sampling and "
                         "the NF classifier")
