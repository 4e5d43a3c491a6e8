"""nfzoo hooks of nfzoo-heads (lazy targets: registering imports no torch).

Each head is a Python function on any FlowModel (the registered target), a CLI command, and (metadata
`eval_tasks`) the evaluations `nfzoo eval NAME --dataset DS --task TASK` runs with it."""
import nfzoo

PAPERS = {"glem": "GLEM (papers/003), section 5: CNN-A and latent augmentation",
          "thesis": "thesis (papers/000): generative inpainting for face anonymization and art restoration",
          "typicality": "Nalisnick et al. 2019, Do deep generative models know what they don't know?"}


@nfzoo.hookimpl
def register_heads(register):
    register("synthesize", "nfzoo_heads.synth:synthesize", command="synth", paper=PAPERS["glem"],
             description="a labelled data set (ImageFolder PNG + manifest) sampled from a class-conditional "
                         "model; eval task cnn-a trains a ResNet-18 on generated images",
             eval_tasks={"cnn-a": "nfzoo_heads.classifier:cnn_a"})
    register("augment", "nfzoo_heads.augment:LatentAugment", command="augment", paper=PAPERS["glem"],
             description="latent augmentation (same-class latent mixup, principal directions), "
                         "interpolation grids; eval task augment compares it with standard augmentation",
             eval_tasks={"augment": "nfzoo_heads.augment:augment_study"})
    register("inpaint", "nfzoo_heads.inpainting:inpaint", command="inpaint", paper=PAPERS["thesis"],
             description="fill masked pixels under the model's prior (latent fit for flows, RePaint-style "
                         "for diffusion); eval task anonymize compares it with blur and constant fill",
             eval_tasks={"anonymize": "nfzoo_heads.inpainting:anonymize_study"})
    register("score", "nfzoo_heads.scoring:score", command="score", paper=PAPERS["typicality"],
             description="per-image bpd and typicality as anomaly scores; eval task ood measures their AUROC",
             eval_tasks={"ood": "nfzoo_heads.scoring:ood_auroc"})


@nfzoo.hookimpl
def register_commands(app):
    from .cli import add_commands

    add_commands(app)
