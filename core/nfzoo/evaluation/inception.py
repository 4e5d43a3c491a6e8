"""Inception-v3's 2048-d pool features, from torchvision's ImageNet weights only if they are already in the
local torch hub cache: the file is checked against its full published sha256 and read with torch's
weights-only loader (nothing in it can run code), then loaded strictly into a torchvision Inception3
built without weights. nfzoo never downloads the file (`require_inception_weights` says how to get it).

torch and torchvision are imported only when a function needs them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from nfzoo.errors import UsageError

INCEPTION_SIZE = 299   # the side, in pixels, that Inception-v3 takes

# torchvision publishes these weights only as a pickle (.pth) and names the file after the first 8 hex
# digits of its sha256, which it checks only while downloading (never for a file already in the cache),
# and then unpickles it in full. nfzoo checks the whole file against the full sha256 first and then reads
# it with torch's weights-only loader, which builds tensors and plain containers and nothing else.
INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"   # Inception_V3_Weights.IMAGENET1K_V1's file name
INCEPTION_URL = "https://download.pytorch.org/models/" + INCEPTION_FILE
INCEPTION_SHA256 = "0cc3c7bd75056d25e46cba549dc184522069b81e9787eff6df84f397bd52a5ef"   # 108,949,747 bytes


def inception_weights_path() -> Path:
    """Where torchvision keeps Inception-v3's ImageNet weights in the torch hub cache (may not exist)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE


def _inception_help(path: Path) -> str:
    return (f"Download {INCEPTION_URL} once on a machine with internet (e.g. `curl -L -o "
            f"{INCEPTION_FILE} {INCEPTION_URL}`; its sha256 is {INCEPTION_SHA256}) and copy it to {path}, "
            "or use an oracle (--oracle DIR) instead")


def _read_inception_weights(path: Path) -> bytes:
    """The bytes of the cached weight file, after checking them against the published sha256 (read once,
    so what is checked is what gets loaded)."""
    import hashlib

    from nfzoo.errors import CorruptFileError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the Inception-v3 weights {path}: {exc.strerror or exc}. "
                         + _inception_help(path)) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != INCEPTION_SHA256:
        raise CorruptFileError(
            f"{path} is not torchvision's Inception-v3 weight file: its sha256 is {digest}, expected "
            f"{INCEPTION_SHA256} ({len(data):,} bytes; the real file has 108,949,747). It was not loaded. "
            f"Delete it. " + _inception_help(path))
    return data


def require_inception_weights() -> Path:
    """The path of the cached Inception-v3 weights once their sha256 matches the published one; a
    UsageError saying how to get them when they are missing, a CorruptFileError when they differ."""
    path = _present_inception_weights()
    _read_inception_weights(path)
    return path


def _present_inception_weights() -> Path:
    path = inception_weights_path()
    if not path.is_file():
        raise UsageError(
            f"the Inception features need torchvision's Inception-v3 weights in the torch hub cache "
            f"({path}); nfzoo never downloads them. " + _inception_help(path) + ".")
    return path


def load_inception_state_dict(path: Optional[Path] = None) -> Dict[str, Any]:
    """Inception-v3's ImageNet state dict from the torch hub cache: sha256 checked first, then read with
    torch.load(weights_only=True) (tensors only: nothing in the file can run code)."""
    import io

    import torch

    from nfzoo.errors import CorruptFileError

    path = Path(path) if path is not None else _present_inception_weights()
    data = _read_inception_weights(path)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:   # UnpicklingError for a forbidden global; others for a malformed archive
        # torch's message also says how to load the file unsafely: keep only the reason
        why = [ln.split("error:", 1)[-1].split(". ")[0].strip() for ln in str(exc).splitlines()
               if "Unsupported" in ln]
        raise CorruptFileError(f"{path} holds more than tensors; the weights-only loader refused it "
                               f"({why[0] if why else type(exc).__name__}). Delete it. "
                               + _inception_help(path)) from None
    if not (isinstance(state, dict) and state
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())):
        raise CorruptFileError(f"{path} is not a state dict of tensors. Delete it. " + _inception_help(path))
    return state


def inception_net(state: Dict[str, Any]):
    """torchvision's Inception3 as Inception_V3_Weights.IMAGENET1K_V1 builds it (aux logits, 1000 classes,
    no random init), with nfzoo's input convention (transform_input=False: inputs already in [-1, 1]),
    loaded from `state` with strict=True; the classifier is replaced by the identity (2048-d features)."""
    import torch
    from torchvision.models import inception_v3

    from nfzoo.errors import CorruptFileError

    net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False,
                       num_classes=1000)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CorruptFileError(f"the Inception-v3 weights do not fit torchvision's Inception3: "
                               f"{str(exc).splitlines()[0]}") from None
    net.fc = torch.nn.Identity()  # pyright: ignore[reportAttributeAccessIssue]  # torchvision types fc as Linear
    return net.eval()


class InceptionFeatures:
    """Inception-v3's 2048-d pool features of images in [0, 1]: grey images are repeated to 3 channels,
    everything is resized to 299x299 (bilinear, antialiased) and scaled to [-1, 1] as the weights expect.
    Uses torchvision's ImageNet weights only if they are already in the torch hub cache, checked against
    their sha256 and read without unpickling (load_inception_state_dict). Note: these are torchvision's
    weights, not the TF-FID graph of pytorch-fid, so the numbers are close to but not identical with
    published FIDs."""

    def __init__(self, device: Optional[str] = None):
        self.net = inception_net(load_inception_state_dict()).to(device or "cpu")

    def eval(self):
        """Always in eval mode: returns self, as nn.Module.eval does."""
        return self

    def __call__(self, x):
        import torch
        from torch.nn import functional as F

        from nfzoo.flows.model import to_unit

        x = to_unit(x).float().to(next(self.net.parameters()).device)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if x.shape[1] != 3:
            raise UsageError(f"Inception features need 1- or 3-channel images, got {x.shape[1]} channels")
        x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False,
                          antialias=True)
        with torch.no_grad():
            return self.net(x * 2 - 1)
