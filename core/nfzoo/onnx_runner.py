"""Run an nfzoo model exported with `nfzoo export` (nfzoo.export): numpy and onnxruntime only, no torch.

`nfzoo export MODEL --out DIR` copies this file into DIR as nfzoo_onnx_runner.py, so an exported model is
usable where nothing but numpy and onnxruntime is installed:

    from nfzoo_onnx_runner import ExportedModel
    m = ExportedModel("DIR")                        # checks every file against manifest.json's sha256
    images = m.sample(16, seed=0)                   # (16, C, H, W) float32 in [0, 1], the default sampling
    images = m.sample(16, seed=0, temperature=0.5, label=3)
    out = m.density(images)                         # {"z": ..., "logdet": ...}; m.log_prob(images), m.bpd

The default sampling is the model's own (its config's sampler and temperature): the noise is drawn here with
numpy (so the same seed gives other images than torch's), the prior graph turns it into latents, the decode
graph into images. Diffusion models run DDIM here, step for step as nfzoo's `ddim` sampler (diffusers'
DDIM scheduler with trailing timesteps, the predicted z0 clipped and the noise re-derived from it), with the
U-Net step as the graph. `python nfzoo_onnx_runner.py DIR -n 16 --seed 0 --out samples.npy` from a shell.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

MANIFEST_NAME = "manifest.json"
LOG_256 = float(np.log(256.0))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ExportedModel:
    """An exported nfzoo model: its graphs as onnxruntime sessions (CPU by default) and the samplers around
    them. `threads`: onnxruntime's intra-op threads (None: onnxruntime's default). `batch_size`: the most
    items one graph call takes (larger inputs run in chunks, so memory stays bounded). `verify`: check each
    file's sha256 against the manifest first (a mismatch is a ValueError; nothing is loaded)."""

    def __init__(self, directory: Union[str, os.PathLike], threads: Optional[int] = None, verify: bool = True,
                 providers: Sequence[str] = ("CPUExecutionProvider",), batch_size: int = 256):
        import onnxruntime as ort

        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.directory = Path(directory)
        path = self.directory / MANIFEST_NAME
        if not path.is_file():
            raise ValueError(f"{self.directory} holds no {MANIFEST_NAME}: export a model there with "
                             "`nfzoo export MODEL --out DIR`")
        self.manifest: Dict[str, Any] = json.loads(path.read_text())
        self.image_shape = tuple(self.manifest["image_shape"])
        self.latent_shape = tuple(self.manifest["latent_shape"])
        self.num_classes: Optional[int] = self.manifest.get("num_classes")
        self.sampling: Dict[str, Any] = self.manifest["sampling"]
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.sessions: Dict[str, Any] = {}
        for name, graph in self.manifest["graphs"].items():
            if Path(graph["file"]).name != graph["file"] or graph["file"] in ("", ".", ".."):
                raise ValueError(f"{MANIFEST_NAME} names the graph file {graph['file']!r}: graphs must be plain "
                                 "file names inside the export folder; export the model again")
            file = self.directory / graph["file"]
            if verify and _sha256(file) != graph["sha256"]:
                raise ValueError(f"{file} does not match the sha256 in {MANIFEST_NAME}: the export is corrupt or "
                                 "was changed; export the model again")
            self.sessions[name] = ort.InferenceSession(str(file), options, providers=list(providers))

    # ------------------------------------------------------------------------------------ helpers
    def has(self, graph: str) -> bool:
        """Whether the graph was exported (else manifest["not_exported"][graph] says why)."""
        return graph in self.sessions

    def _session(self, graph: str):
        if graph not in self.sessions:
            why = self.manifest.get("not_exported", {}).get(graph, "it was not asked for at export time")
            raise ValueError(f"this export has no {graph} graph: {why}")
        return self.sessions[graph]

    def _run(self, graph: str, feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
        """Run a graph on the inputs it declares, in chunks of at most batch_size items along the batch axis
        (the inputs the manifest marks "batch"); every output is batched."""
        session = self._session(graph)
        batched = {i["name"] for i in self.manifest["graphs"][graph]["inputs"] if i["shape"][:1] == ["batch"]}
        feed = {k: v for k, v in feed.items() if k in {i.name for i in session.get_inputs()}}
        n = max((len(v) for k, v in feed.items() if k in batched), default=0)
        if n <= self.batch_size:
            return session.run(None, feed)
        parts = [session.run(None, {k: (v[i:i + self.batch_size] if k in batched else v) for k, v in feed.items()})
                 for i in range(0, n, self.batch_size)]
        return [np.concatenate(chunk) for chunk in zip(*parts)]

    def labels(self, label: Union[None, int, Sequence[int], np.ndarray], n: int) -> Optional[np.ndarray]:
        """Labels as the graphs take them: None for an unconditional model; else n int64 labels (one label is
        repeated), each in [0, num_classes). Anything else is a ValueError."""
        if self.num_classes is None:
            if label is not None:
                raise ValueError("this model is unconditional: drop the label")
            return None
        if label is None:
            raise ValueError(f"this model is class-conditional ({self.num_classes} classes): pass label")
        y = np.asarray(label, dtype=np.int64).reshape(-1)
        if y.size == 1 and n > 1:
            y = np.repeat(y, n)
        if y.size != n or (y < 0).any() or (y >= self.num_classes).any():
            raise ValueError(f"label must be {n} integers in [0, {self.num_classes - 1}]")
        return y

    def _temperature(self, temperature: Optional[float]) -> float:
        t = self.sampling["temperature"] if temperature is None else float(temperature)
        if not np.isfinite(t) or t < 0:
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        return t

    # ------------------------------------------------------------------------------------ sampling
    def sample(self, n: int, seed: int = 0, temperature: Optional[float] = None,
               label: Union[None, int, Sequence[int]] = None) -> np.ndarray:
        """n images (n, C, H, W), float32 in [0, 1], with the model's default sampling (temperature None:
        the model's measured one); the noise from numpy's default_rng(seed)."""
        n = int(n)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        y = self.labels(label, n)
        if self.sampling["kind"] == "diffusion":
            if self._temperature(temperature) != 1.0:
                raise ValueError("a diffusion model samples at temperature 1 only")
            z = self.ddim(self.draw_ddim_noise(n, seed))
        else:
            z = self.prior(self.draw_noise(n, seed), temperature, y)
        return self.decode(z, y)

    def draw_noise(self, n: int, seed: int = 0) -> Dict[str, np.ndarray]:
        """The prior graph's noise inputs for n samples, drawn with numpy's default_rng(seed) in the order the
        manifest lists them: standard normal, uniform [0, 1) or categorical (with the listed probabilities)."""
        self._session("prior")
        rng = np.random.default_rng(seed)
        out = {}
        for spec in self.manifest["graphs"]["prior"]["noise"]:
            shape = tuple(n if a == "batch" else int(a) for a in spec["shape"])
            if spec["distribution"] == "normal":
                out[spec["name"]] = rng.standard_normal(shape, dtype=np.float32)
            elif spec["distribution"] == "uniform":
                out[spec["name"]] = rng.random(shape, dtype=np.float32)
            else:
                p = np.asarray(spec["probs"], dtype=np.float64)
                out[spec["name"]] = rng.choice(p.size, size=shape, p=p / p.sum()).astype(np.int64)
        return out

    def prior(self, noise: Dict[str, np.ndarray], temperature: Optional[float] = None,
              label: Optional[np.ndarray] = None) -> np.ndarray:
        """Latents from the prior graph: the given noise (draw_noise), temperature and labels."""
        feed = dict(noise, temperature=np.asarray(self._temperature(temperature), dtype=np.float32))
        n = next(iter(noise.values())).shape[0]
        y = self.labels(label, n)
        if y is not None:
            feed["label"] = y
        return self._run("prior", feed)[0]

    def decode(self, z: np.ndarray, label: Union[None, int, Sequence[int]] = None) -> np.ndarray:
        """Latents (n, *latent_shape) -> images (n, C, H, W) in [0, 1]."""
        z = np.ascontiguousarray(z, dtype=np.float32)
        feed = {"z": z}
        y = self.labels(label, z.shape[0])
        if y is not None:
            feed["label"] = y
        return self._run("decode", feed)[0]

    # ------------------------------------------------------------------------------------ densities
    def density(self, images: np.ndarray, label: Union[None, int, Sequence[int]] = None) -> Dict[str, np.ndarray]:
        """Images in [0, 1] (uint8 is scaled by 1/255) -> {"z": latents, "logdet": log|det dz/dx|} at the
        centre of each 8-bit bin."""
        x = np.asarray(images)
        x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else np.ascontiguousarray(x, dtype=np.float32)
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"this model takes images of shape {self.image_shape} (C, H, W), got {x.shape[1:]}")
        feed = {"image": x}
        y = self.labels(label, x.shape[0])
        if y is not None:
            feed["label"] = y
        z, logdet = self._run("density", feed)
        return {"z": z, "logdet": logdet}

    def log_prob(self, images: np.ndarray, label: Union[None, int, Sequence[int]] = None) -> np.ndarray:
        """log P(8-bit image) in nats (the dequantized bound at the bins' centres, as FlowModel.log_prob with
        noise=False): prior log-density of z + log-det - D ln 256."""
        out = self.density(images, label)
        feed = {"z": out["z"]}
        y = self.labels(label, out["z"].shape[0])
        if y is not None:
            feed["label"] = y
        lp = self._run("prior_log_prob", feed)[0]
        return lp + out["logdet"] - self.manifest["dim"] * LOG_256

    def bpd(self, images: np.ndarray, label: Union[None, int, Sequence[int]] = None) -> np.ndarray:
        """Bits per dimension, -log_prob / (D ln 2)."""
        return -self.log_prob(images, label) / (self.manifest["dim"] * np.log(2.0))

    # ------------------------------------------------------------------------------------ diffusion
    def timesteps(self, steps: Optional[int] = None) -> np.ndarray:
        """DDIM's timesteps for `steps` steps (None: the model's), "trailing" as nfzoo's sampler spaces them."""
        d = self.sampling["ddim"]
        steps = int(d["steps"] if steps is None else steps)
        total = d["num_train_timesteps"]
        if not 1 <= steps <= total:
            raise ValueError(f"steps must be an integer from 1 to {total}, got {steps}")
        if d["timestep_spacing"] != "trailing":
            raise ValueError(f"the runner spaces DDIM's steps 'trailing' only; this model's are "
                             f"{d['timestep_spacing']}")
        return np.round(np.arange(total, 0, -total / steps)).astype(np.int64) - 1

    def draw_ddim_noise(self, n: int, seed: int = 0, steps: Optional[int] = None,
                        eta: Optional[float] = None) -> List[np.ndarray]:
        """DDIM's noise for n samples: the starting latents, then one draw per step when eta > 0 (the order
        nfzoo's ddim sampler draws in), standard normal from numpy's default_rng(seed)."""
        rng = np.random.default_rng(seed)
        d = self.sampling["ddim"]
        eta = d["eta"] if eta is None else float(eta)
        count = 1 + (len(self.timesteps(steps)) if eta > 0 else 0)
        return [rng.standard_normal((n, *self.latent_shape), dtype=np.float32) for _ in range(count)]

    def eps(self, z: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The U-Net's noise prediction for latents z_t at 0-based timesteps t (n,)."""
        return self._run("unet", {"z_t": np.ascontiguousarray(z, dtype=np.float32),
                                  "t": np.asarray(t, dtype=np.int64).reshape(-1)})[0]

    def ddim(self, noise: Sequence[np.ndarray], steps: Optional[int] = None, eta: Optional[float] = None) -> np.ndarray:
        """The reverse diffusion from noise[0] to z0 by DDIM (Song et al. 2021, eq. 12 and 16), as diffusers'
        DDIMScheduler.step computes it in float32; noise[1 + j] is step j's noise when eta > 0."""
        d = self.sampling["ddim"]
        eta = np.float32(d["eta"] if eta is None else eta)
        if not 0 <= eta <= 1:
            raise ValueError(f"eta must be in [0, 1], got {eta}")
        if d["prediction_type"] != "epsilon":
            raise ValueError(f"the runner's DDIM takes noise predictions only, not {d['prediction_type']}")
        ts = self.timesteps(steps)
        if len(noise) < 1 + (len(ts) if eta > 0 else 0):
            raise ValueError(f"DDIM with eta > 0 over {len(ts)} steps needs {1 + len(ts)} noise arrays")
        ac = np.asarray(d["alphas_cumprod"], dtype=np.float32)
        final = np.float32(d["final_alpha_cumprod"])
        clip = d["clip_sample_range"]
        one, half = np.float32(1.0), np.float32(0.5)
        z = np.asarray(noise[0], dtype=np.float32) * np.float32(d["init_noise_sigma"])
        ratio = d["num_train_timesteps"] // len(ts)
        for j, t in enumerate(ts):
            eps = self.eps(z, np.full(z.shape[0], t, dtype=np.int64))
            prev = t - ratio
            a_t = ac[t]
            a_prev = ac[prev] if prev >= 0 else final
            b_t = one - a_t
            z0 = (z - b_t ** half * eps) / a_t ** half
            if clip is not None:
                z0 = np.clip(z0, np.float32(-clip), np.float32(clip))
            variance = ((one - a_prev) / b_t) * (one - a_t / a_prev)
            std = eta * variance ** half
            if d["use_clipped_model_output"]:
                eps = (z - a_t ** half * z0) / b_t ** half
            z = a_prev ** half * z0 + (one - a_prev - std ** 2) ** half * eps
            if eta > 0:
                z = z + std * np.asarray(noise[1 + j], dtype=np.float32)
        return z.astype(np.float32)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """`python nfzoo_onnx_runner.py DIR -n 16 --seed 0 [--temperature T] [--label L] --out samples.npy`."""
    p = argparse.ArgumentParser(description="Sample from an nfzoo model exported with `nfzoo export`.")
    p.add_argument("directory")
    p.add_argument("-n", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--label", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True, help="a .npy file: (n, C, H, W) float32 images in [0, 1]")
    a = p.parse_args(argv)
    images = ExportedModel(a.directory, threads=a.threads).sample(a.n, a.seed, a.temperature, a.label)
    np.save(a.out, images, allow_pickle=False)


if __name__ == "__main__":
    main()
