"""Run an nfzoo model exported with `nfzoo export` (nfzoo.export.onnx): numpy and onnxruntime only, no torch.

`nfzoo export MODEL --out DIR` copies this file into DIR as nfzoo_onnx_runner.py, and the checks it makes on
an export folder before onnxruntime sees it (nfzoo.export.runner_checks) beside it as nfzoo_onnx_checks.py, so an
exported model is usable where nothing but numpy and onnxruntime is installed:

    from nfzoo_onnx_runner import ExportedModel
    m = ExportedModel("DIR")                        # checks the manifest, every graph against its sha256
    images = m.sample(16, seed=0)                   # (16, C, H, W) float32 in [0, 1], the default sampling
    images = m.sample(16, seed=0, temperature=0.5, label=3)
    out = m.density(images)                         # {"z": ..., "logdet": ...}; m.log_prob(images), m.bpd

The default sampling is the model's own (its config's sampler and temperature): the noise is drawn here with
PortableRng (nfzoo_onnx_noise.py, beside this file), which the web export's page implements bit for bit: a seed
gives the same images here and in the browser (within 1e-4; not torch's images for that seed). The prior graph
turns it into latents, the decode graph into images. Diffusion models run DDIM here, step for step as nfzoo's
`ddim` sampler (diffusers' DDIM scheduler, trailing timesteps, the predicted z0 clipped and the noise re-derived
from it), with the U-Net step as the graph. From a shell: `python nfzoo_onnx_runner.py DIR -n 16 --seed 0
--out samples.npy` (`--save-latents z.npy` also writes the latents, which the page decodes; `--latents z.npy`
decodes a file of latents instead of drawing).
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

CHECKS_NAME = "nfzoo_onnx_checks.py"
"""The file name of nfzoo.export.runner_checks in an export folder, beside this runner."""
NOISE_NAME = "nfzoo_onnx_noise.py"
"""The file name of nfzoo.export.runner_noise (the portable generator, the latents reader) in an export folder."""


def _sibling(module: str, file: str):
    """nfzoo.export.<module> inside the package; in an export folder (this file as nfzoo_onnx_runner.py, no
    package), the `file` beside this one, loaded from this file's folder whatever sys.path holds."""
    import importlib
    import importlib.util

    if __package__:
        return importlib.import_module(f"{__package__}.{module}")
    path = Path(__file__).with_name(file)
    if not path.is_file():
        raise ImportError(f"{path} is missing: the runner needs the {file} it was exported with beside it; "
                          "copy the whole export folder, or export the model again")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a module")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


_checks = _sibling("runner_checks", CHECKS_NAME)
_noise = _sibling("runner_noise", NOISE_NAME)
PortableRng, read_latents, MAX_SEED = _noise.PortableRng, _noise.read_latents, _noise.MAX_SEED
# the checks' names, importable from the runner as well (they were defined here before nfzoo.export.runner_checks)
MANIFEST_NAME, MANIFEST_VERSION, ONNX_MESSAGES = _checks.MANIFEST_NAME, _checks.MANIFEST_VERSION, _checks.ONNX_MESSAGES
GRAPHS, DISTRIBUTIONS = _checks.GRAPHS, _checks.DISTRIBUTIONS
check_manifest, external_data, read_export = _checks.check_manifest, _checks.external_data, _checks.read_export
MAX_MANIFEST_BYTES, MAX_GRAPH_BYTES = _checks.MAX_MANIFEST_BYTES, _checks.MAX_GRAPH_BYTES
MAX_ITEM_ELEMENTS, MAX_TRAIN_TIMESTEPS = _checks.MAX_ITEM_ELEMENTS, _checks.MAX_TRAIN_TIMESTEPS
MAX_RANK, MAX_NOISE_ARRAYS, MAX_CATEGORIES = _checks.MAX_RANK, _checks.MAX_NOISE_ARRAYS, _checks.MAX_CATEGORIES
MAX_CLASSES, MAX_TEXT, MAX_NESTING = _checks.MAX_CLASSES, _checks.MAX_TEXT, _checks.MAX_NESTING
LOG_256 = float(np.log(256.0))
MAX_DRAW_ELEMENTS = 1 << 28             # elements one draw allocates, all its arrays together (1 GiB of float32)
_DRAW_LIMIT = "one draw is bounded by 2^28 elements, 1 GiB of float32"


class ExportedModel:
    """An exported nfzoo model: its graphs as onnxruntime sessions (CPU by default) and the samplers around
    them. `threads`: onnxruntime's intra-op threads (None: onnxruntime's default). `batch_size`: the most
    items one graph call takes (larger inputs run in chunks, so memory stays bounded). `verify`: check the
    sha256 of each graph and of each of the runner's files against the manifest (a mismatch is a ValueError;
    nothing is loaded).

    Whatever `verify` says, the manifest is validated first (check_manifest: a ValueError naming the key), each
    graph file is read once and onnxruntime is given those bytes (what runs is what was checked), and a graph
    that would read anything outside its bytes (ONNX external data, external_data()) is refused before
    onnxruntime sees it (read_export, nfzoo.export.runner_checks). Draws are bounded: MAX_DRAW_ELEMENTS elements per
    call, refused before allocating."""

    def __init__(self, directory: Union[str, os.PathLike], threads: Optional[int] = None, verify: bool = True,
                 providers: Sequence[str] = ("CPUExecutionProvider",), batch_size: int = 256):
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.directory = Path(directory)
        manifest, self._sizes, graphs = read_export(self.directory, verify)
        self.manifest: Dict[str, Any] = manifest
        self.image_shape = tuple(manifest["image_shape"])
        self.latent_shape = tuple(manifest["latent_shape"])
        self.num_classes: Optional[int] = manifest.get("num_classes")
        self.sampling: Dict[str, Any] = manifest["sampling"]
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.sessions: Dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="nfzoo-runner-") as empty:
            # besides the check above: were onnxruntime to look for external data, it would look in an empty folder
            options.add_session_config_entry("session.model_external_initializers_file_folder_path", empty)
            for name, data in graphs.items():
                self.sessions[name] = ort.InferenceSession(data, options, providers=list(providers))

    # ------------------------------------------------------------------------------------ helpers
    def has(self, graph: str) -> bool:
        """Whether the graph was exported (else `manifest["not_exported"][graph]` says why)."""
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

    def _check_n(self, n: Any, *draws: Sequence[Tuple[int, int]], hint: str = "") -> int:
        """n as an integer >= 1 for which each of `draws` (the arrays one call allocates, each as (batch axes,
        elements per item)) holds at most MAX_DRAW_ELEMENTS elements in all; else a ValueError, before anything
        is allocated."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        n = int(n)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")

        def elements(k: int) -> int:
            return max(sum(k ** axes * items for axes, items in d) for d in draws)

        if elements(n) > MAX_DRAW_ELEMENTS:
            fits, over = 0, n                   # the most samples one call takes: elements() grows with k
            while over - fits > 1:
                mid = (fits + over) // 2
                fits, over = (mid, over) if elements(mid) <= MAX_DRAW_ELEMENTS else (fits, mid)
            raise ValueError(f"n={n} would allocate {elements(n)} elements at once: at most {fits} samples per "
                             f"call here ({_DRAW_LIMIT}); {hint or 'draw them in several smaller calls'}")
        return n

    def _ddim_settings(self) -> Dict[str, Any]:
        if self.sampling["kind"] != "diffusion":
            raise ValueError("this model is not a diffusion model (its sampling kind is "
                             f"{self.sampling['kind']!r}): use sample(), or draw_noise() and prior()")
        return self.sampling["ddim"]

    def _temperature(self, temperature: Optional[float]) -> float:
        t = self.sampling["temperature"] if temperature is None else float(temperature)
        if not np.isfinite(t) or t < 0:
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        return t

    # ------------------------------------------------------------------------------------ sampling
    def sample(self, n: int, seed: int = 0, temperature: Optional[float] = None,
               label: Union[None, int, Sequence[int], np.ndarray] = None) -> np.ndarray:
        """n images (n, C, H, W), float32 in [0, 1], with the model's default sampling (temperature None:
        the model's measured one); the noise from PortableRng(seed), as the web page draws it. n is bounded: no
        array (the noise, the latents, the images) may hold more than MAX_DRAW_ELEMENTS elements in all."""
        return self.decode(self.sample_latents(n, seed, temperature, label), label)

    def sample_latents(self, n: int, seed: int = 0, temperature: Optional[float] = None,
                       label: Union[None, int, Sequence[int], np.ndarray] = None) -> np.ndarray:
        """The latents (n, *latent_shape) float32 that sample() decodes (n bounded as there): the prior graph's draw
        (flows) or DDIM's result (diffusion); decode(sample_latents(...), label) is sample(...)."""
        latent, image = [(1, math.prod(self.latent_shape))], [(1, math.prod(self.image_shape))]
        diffusion = self.sampling["kind"] == "diffusion"
        n = self._check_n(n, image, self._ddim_draw(None, None)) if diffusion else \
            self._check_n(n, self._sizes["noise"], latent, image)
        y = self.labels(label, n)
        if not diffusion:
            return self.prior(self.draw_noise(n, seed), temperature, y)
        if self._temperature(temperature) != 1.0:
            raise ValueError("a diffusion model samples at temperature 1 only")
        return self.ddim(self.draw_ddim_noise(n, seed))

    def load_latents(self, path: Union[str, os.PathLike]) -> np.ndarray:
        """Latents from a .npy file (as --save-latents writes them): read_latents (nfzoo_onnx_noise.py) for this
        model's latent shape, n bounded as sample()'s; a ValueError naming what is wrong."""
        z = read_latents(path, self.latent_shape)
        self._check_n(len(z), [(1, math.prod(self.latent_shape)), (1, math.prod(self.image_shape))])
        return z

    def draw_noise(self, n: int, seed: int = 0) -> Dict[str, np.ndarray]:
        """The prior graph's noise inputs for n samples, drawn with PortableRng(seed) (the web page's generator)
        in the order the manifest lists them, one stream: standard normal, uniform [0, 1) or categorical (with the
        listed probabilities).
        At most MAX_DRAW_ELEMENTS elements in all (a larger n is a ValueError, before anything is drawn)."""
        self._session("prior")
        n = self._check_n(n, self._sizes["noise"])
        rng = PortableRng(seed)
        out = {}
        for spec in self.manifest["graphs"]["prior"]["noise"]:
            shape = tuple(n if a == "batch" else int(a) for a in spec["shape"])
            if spec["distribution"] == "normal":
                out[spec["name"]] = rng.normal(shape)
            elif spec["distribution"] == "uniform":
                out[spec["name"]] = rng.uniform32(shape)
            else:
                out[spec["name"]] = rng.categorical(spec["probs"], shape)
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

    def decode(self, z: np.ndarray, label: Union[None, int, Sequence[int], np.ndarray] = None) -> np.ndarray:
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
        d = self._ddim_settings()
        total = d["num_train_timesteps"]            # at most MAX_TRAIN_TIMESTEPS (check_manifest)
        given = d["steps"] if steps is None else steps
        if isinstance(given, bool) or not isinstance(given, (int, np.integer)) or not 1 <= given <= total:
            raise ValueError(f"steps must be an integer from 1 to {total}, got {given!r}")
        steps = int(given)
        if d["timestep_spacing"] != "trailing":
            raise ValueError(f"the runner spaces DDIM's steps 'trailing' only; this model's are "
                             f"{d['timestep_spacing']}")
        return np.round(np.arange(total, 0, -total / steps)).astype(np.int64) - 1

    def draw_ddim_noise(self, n: int, seed: int = 0, steps: Optional[int] = None,
                        eta: Optional[float] = None) -> List[np.ndarray]:
        """DDIM's noise for n samples: the starting latents, then one draw per step when eta > 0 (the order
        nfzoo's ddim sampler draws in), standard normal from PortableRng(seed), one stream. At most
        MAX_DRAW_ELEMENTS elements in all (a larger n is a ValueError, before anything is drawn)."""
        draw = self._ddim_draw(steps, eta)
        n = self._check_n(n, draw, hint="draw them in several smaller calls, or use fewer steps")
        rng = PortableRng(seed)
        return [rng.normal((n, *self.latent_shape)) for _ in range(len(draw))]

    def _ddim_draw(self, steps: Optional[int], eta: Optional[float]) -> List[Tuple[int, int]]:
        """The arrays draw_ddim_noise draws, as (batch axes, elements per item): one, and one per step if eta > 0."""
        d = self._ddim_settings()
        eta = float(d["eta"] if eta is None else eta)
        if not 0 <= eta <= 1:
            raise ValueError(f"eta must be in [0, 1], got {eta}")
        count = 1 + (len(self.timesteps(steps)) if eta > 0 else 0)
        return [(1, math.prod(self.latent_shape))] * count

    def eps(self, z: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The U-Net's noise prediction for latents z_t at 0-based timesteps t (n,)."""
        return self._run("unet", {"z_t": np.ascontiguousarray(z, dtype=np.float32),
                                  "t": np.asarray(t, dtype=np.int64).reshape(-1)})[0]

    def ddim(self, noise: Sequence[np.ndarray], steps: Optional[int] = None, eta: Optional[float] = None) -> np.ndarray:
        """The reverse diffusion from noise[0] to z0 by DDIM (Song et al. 2021, eq. 12 and 16), as diffusers'
        DDIMScheduler.step computes it in float32; noise[1 + j] is step j's noise when eta > 0."""
        d = self._ddim_settings()
        e = np.float32(d["eta"] if eta is None else eta)
        if not 0 <= e <= 1:
            raise ValueError(f"eta must be in [0, 1], got {e}")
        if d["prediction_type"] != "epsilon":
            raise ValueError(f"the runner's DDIM takes noise predictions only, not {d['prediction_type']}")
        ts = self.timesteps(steps)
        if len(noise) < 1 + (len(ts) if e > 0 else 0):
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
            std = e * variance ** half
            if d["use_clipped_model_output"]:
                eps = (z - a_t ** half * z0) / b_t ** half
            z = a_prev ** half * z0 + (one - a_prev - std ** 2) ** half * eps
            if e > 0:
                z = z + std * np.asarray(noise[1 + j], dtype=np.float32)
        return z.astype(np.float32)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """`python nfzoo_onnx_runner.py DIR -n 16 --seed 0 [--temperature T] [--label L | --per-class]
    [--latents z.npy] [--save-latents z.npy] --out samples.npy`; a bad argument or export exits 2."""
    p = argparse.ArgumentParser(description="Sample from an nfzoo model exported with `nfzoo export`.")
    p.add_argument("directory")
    p.add_argument("-n", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--label", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--per-class", action="store_true", help="n samples of each class, class by class")
    p.add_argument("--latents", help="decode this .npy file's latents (n, *latent_shape) instead of drawing")
    p.add_argument("--save-latents", help="also write the decoded latents to this .npy file (the page takes it)")
    p.add_argument("--out", required=True, help="a .npy file: (n, C, H, W) float32 images in [0, 1]")
    a = p.parse_args(argv)
    try:
        m = ExportedModel(a.directory, threads=a.threads)
        if a.per_class and (m.num_classes is None or a.label is not None):
            raise ValueError("--per-class needs a class-conditional model, and no --label")
        z = m.load_latents(a.latents) if a.latents is not None else None
        count = len(z) if z is not None else a.n * (m.num_classes if a.per_class else 1)
        label, k = a.label, m.num_classes
        if a.per_class and k is not None:
            if count % k:
                raise ValueError(f"--per-class with --latents needs a multiple of {k} latents")
            label = np.arange(count) // (count // k)
        if z is None:
            z = m.sample_latents(count, a.seed, a.temperature, label)
        images = m.decode(z, label)
    except ValueError as exc:        # a refused export or argument: the message, not a traceback
        p.exit(2, f"error: {exc}\n")
    if a.save_latents:
        np.save(a.save_latents, z, allow_pickle=False)
    np.save(a.out, images, allow_pickle=False)


if __name__ == "__main__":
    main()
