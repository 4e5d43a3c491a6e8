"""nfzoo-tarflow: TarFlow (Zhai et al. 2024, arXiv:2412.06329), a normalizing flow of autoregressive
Transformer blocks over image patches, trained with noise augmentation and sampled with a key/value-cached
inverse, one score denoising step and classifier-free guidance.

    import nfzoo
    model = nfzoo.create_model("tarflow", image_shape=(1, 28, 28), patch_size=4, hidden=128, blocks=4)

Importing this package imports no torch; the names below load on first use.
"""
from nfzoo.lazy import lazy_exports

__version__ = "0.2.0"
_LAZY = {"TarFlow": "flow", "TarFlowBlock": "flow", "TarFlowModel": "models", "tarflow": "models",
         "TarFlowSampler": "samplers"}
__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
