"""The noise the exported runner draws and the latents it reads (issue 39): nfzoo's portable seeded generator,
PortableRng, which the web export's page (web_page/app.js, class Rng) implements bit for bit so that a seed gives
the same noise in numpy and in the browser, and read_latents for a .npy file of latents.

`nfzoo export` copies this module into the export folder as nfzoo_onnx_noise.py, beside nfzoo_onnx_runner.py,
which loads it from there (numpy only)."""
from __future__ import annotations

import math
import os
from typing import Sequence, Tuple, Union

import numpy as np

MAX_SEED = (1 << 53) - 1
"""Seeds are integers in [0, 2^53): what a JavaScript number holds exactly, so the page takes the same seeds."""
_M32 = 0xFFFFFFFF


def _mix32(x: Union[int, np.ndarray]) -> np.ndarray:
    """lowbias32 (C. Wellons' 32-bit integer hash, a bijection of uint32): x ^= x >> 16; x *= 0x7feb352d;
    x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16, all modulo 2^32."""
    x = np.array(x, dtype=np.uint32, ndmin=1)         # arrays: uint32 products wrap without a warning
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


class PortableRng:
    """nfzoo's portable seeded generator (the "nfzoo-counter32" stream, version 1): small enough to write down,
    and implemented bit for bit by the web page's app.js (class Rng), so that a seed draws the same noise in
    the numpy runner and in the browser. Not numpy's PCG64 and ziggurat; not cryptographic.

    For a seed s in [0, 2^53): key0 = mix32((s mod 2^32) ^ 0x9E3779B9), key1 = mix32(floor(s / 2^32) ^
    0x85EBCA6B), and word k of the stream (k = 0, 1, ..., < 2^32; each draw continues where the last ended) is
    mix32(mix32((k + key0) mod 2^32) ^ key1), mix32 being lowbias32 (_mix32). From the words, in order:

    - a uniform in [0, 1) takes two words a, b: u = ((a >> 5) * 2^26 + (b >> 6)) / 2^53 (53 bits, float64);
    - normals come in pairs by Box-Muller from two uniforms u1, u2: r = sqrt(-2 ln(1 - u1)), r cos(2 pi u2)
      then r sin(2 pi u2) (an odd count drops the last sine), rounded to float32;
    - a float32 uniform is the 53-bit uniform rounded down to 24 bits ((a >> 8) / 2^24);
    - a categorical (class or mixture component) with probabilities p takes one uniform: the number of
      entries of cumsum(p) (float64, in order) that are <= u * sum(p), at most len(p) - 1.

    Transcendentals (log, cos, sin) come from each platform's libm, which may differ in the last bit of a
    float64: the float32 normals agree within one float32 ulp, nearly always exactly."""

    def __init__(self, seed: int = 0):
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= MAX_SEED:
            raise ValueError(f"seed must be an integer in [0, 2^53 - 1], got {seed!r}")
        s = int(seed)
        self.seed = s
        self.key0 = _mix32((s & _M32) ^ 0x9E3779B9)        # one-element arrays
        self.key1 = _mix32((s >> 32) ^ 0x85EBCA6B)
        self.position = 0

    def words(self, count: int) -> np.ndarray:
        """The next `count` words of the stream (uint32)."""
        if self.position + count > 1 << 32:
            raise ValueError("a PortableRng stream holds 2^32 words: draw less per seed")
        k = np.arange(self.position, self.position + count, dtype=np.uint64).astype(np.uint32)
        self.position += count
        return _mix32(_mix32(k + self.key0) ^ self.key1)

    def uniform(self, count: int) -> np.ndarray:
        """`count` float64 uniforms in [0, 1) of 53 bits each."""
        w = self.words(2 * count)
        return ((w[0::2] >> np.uint32(5)).astype(np.float64) * 67108864.0
                + (w[1::2] >> np.uint32(6)).astype(np.float64)) / 9007199254740992.0

    def normal(self, shape: Sequence[int]) -> np.ndarray:
        """Standard normals of `shape` (float32), by Box-Muller in pairs, C order."""
        count = math.prod(shape)
        u = self.uniform(2 * ((count + 1) // 2))
        r = np.sqrt(-2.0 * np.log(1.0 - u[0::2]))
        theta = 2.0 * math.pi * u[1::2]
        out = np.empty(r.size * 2, dtype=np.float64)
        out[0::2], out[1::2] = r * np.cos(theta), r * np.sin(theta)
        return out[:count].astype(np.float32).reshape(shape)

    def uniform32(self, shape: Sequence[int]) -> np.ndarray:
        """float32 uniforms in [0, 1) of `shape`: the 53-bit uniforms rounded down to 24 bits."""
        return (np.floor(self.uniform(math.prod(shape)) * 16777216.0) / 16777216.0).astype(np.float32).reshape(shape)

    def categorical(self, probs: Sequence[float], shape: Sequence[int]) -> np.ndarray:
        """int64 draws from the categorical `probs` (non-negative, not all 0; normalised here), of `shape`."""
        cdf = np.cumsum(np.asarray(probs, dtype=np.float64))
        u = self.uniform(math.prod(shape)) * cdf[-1]
        return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.size - 1).astype(np.int64).reshape(shape)


def read_latents(path: Union[str, os.PathLike], latent_shape: Tuple[int, ...]) -> np.ndarray:
    """Latents from a .npy file (no pickles): float32 (float64 is converted) of shape (n, *latent_shape), or
    latent_shape for one, all finite, as float32 (n, *latent_shape). Anything else is a ValueError."""
    latent_shape = tuple(latent_shape)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read latents from {path}: {exc}") from None
    if not isinstance(z, np.ndarray) or z.dtype not in (np.float32, np.float64):
        raise ValueError(f"latents must be a float32 array, got {getattr(z, 'dtype', type(z).__name__)} in {path}")
    if tuple(z.shape) == latent_shape:
        z = z[None]
    if z.ndim != len(latent_shape) + 1 or tuple(z.shape[1:]) != latent_shape or len(z) < 1:
        raise ValueError(f"latents must have shape (n, {', '.join(map(str, latent_shape))}), got "
                         f"{tuple(z.shape)} in {path}")
    z = z.astype(np.float32)
    if not np.isfinite(z).all():
        raise ValueError(f"latents in {path} are not all finite")
    return z
