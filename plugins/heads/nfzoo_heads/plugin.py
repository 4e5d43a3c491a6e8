"""nfzoo hooks of nfzoo-heads (lazy targets: registering imports no torch).

Each head is a Python function on any FlowModel (the registered target), a CLI command, and evaluation
tasks (register_eval_tasks, metadata `head`) that `nfzoo eval NAME --dataset DS --task TASK` runs."""
import nfzoo

PAPERS = {"glem": "GLEM (papers/003), section 5: CNN-A and latent augmentation",
          "thesis": "thesis (papers/000): generative inpainting for face anonymization and art restoration",
          "typicality": "Nalisnick et al. 2019, Do deep generative models know what they don't know?"}


@nfzoo.hookimpl
def register_heads(register):
    register("synthesize", "nfzoo_heads.synth:synthesize", command="synth", paper=PAPERS["glem"],
             description="a labelled data set (ImageFolder PNG + manifest) sampled from a class-conditional "
                         "model; eval task cnn-a trains a ResNet-18 on generated images")
    register("augment", "nfzoo_heads.augment:LatentAugment", command="augment", paper=PAPERS["glem"],
             description="latent augmentation (same-class latent mixup, principal directions), "
                         "interpolation grids; eval task augment compares it with standard augmentation")
    register("inpaint", "nfzoo_heads.inpainting:inpaint", command="inpaint", paper=PAPERS["thesis"],
             description="fill masked pixels under the model's prior (latent fit for flows, RePaint-style "
                         "for diffusion); eval task anonymize compares it with blur and constant fill")
    register("score", "nfzoo_heads.scoring:score", command="score", paper=PAPERS["typicality"],
             description="per-image bpd and typicality as anomaly scores; eval task ood measures their AUROC")


@nfzoo.hookimpl
def register_eval_tasks(register):
    register("cnn-a", "nfzoo_heads.classifier:cnn_a", head="synthesize", paper=PAPERS["glem"],
             description="a ResNet-18 trained on images a class-conditional model generates, tested on the "
                         "real test split, beside the same recipe trained on the real training split")
    register("augment", "nfzoo_heads.augment:augment_study", head="augment", paper=PAPERS["glem"],
             description="test accuracy of a ResNet-18 with standard against latent augmentation, over seeds")
    register("anonymize", "nfzoo_heads.inpainting:anonymize_study", head="inpaint", paper=PAPERS["thesis"],
             description="a box hidden and filled by inpainting, blur or a constant: the oracle's accuracy "
                         "and the PSNR in the box")
    register("ood", "nfzoo_heads.scoring:ood_auroc", head="score", paper=PAPERS["typicality"],
             description="AUROC of bpd and typicality as detectors of out-of-distribution sets")


@nfzoo.hookimpl
def register_commands(app):
    from .cli import add_commands

    add_commands(app)
