"""nfzoo-heads: the applications of the papers as tools that work on any model in the registry.

Every head uses only the public FlowModel API (encode, decode, log_prob / bpd, sample, and the diffusion
prior's schedule where a model has one), so a third party's model gets them too:

    import nfzoo, nfzoo_heads
    model = nfzoo.load("glow-mnist5k")
    filled = nfzoo_heads.inpaint(model, x, mask)          # x (B, C, H, W) in [0, 1]; mask 1 = fill
    records = nfzoo_heads.score(model, x)                 # per-image bpd and typicality
    data = nfzoo_heads.synthesize(nfzoo.load("glem-mnist5k"), 5000, "synth/")   # labelled PNG folder

Importing this package imports no torch; the heads load on first use.
"""

__version__ = "0.2.0"

from nfzoo.lazy import lazy_exports

_LAZY = {
    "synthesize": "synth", "sample_labelled": "synth",
    "latent_mixup": "augment", "principal_jitter": "augment", "LatentAugment": "augment",
    "interpolate": "augment", "augment_folder": "augment", "augment_study": "augment",
    "inpaint": "inpainting", "box_mask": "inpainting", "parse_box": "inpainting", "is_diffusion": "inpainting",
    "anonymize_study": "inpainting",
    "score": "scoring", "typicality_reference": "scoring", "ood_auroc": "scoring",
    "resnet18_for": "classifier", "train_classifier": "classifier", "cnn_a": "classifier",
}
__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
