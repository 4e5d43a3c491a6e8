"""TarFlow's bijectors (Zhai et al. 2024, arXiv:2412.06329): autoregressive affine flows over image patches,
each conditioned by a causal Transformer.

An image (B, C, H, W) is cut into p x p patches: a sequence of T = (H/p)(W/p) tokens of D = C p^2 values,
read in raster order (reversed in the blocks with `flip`). One block maps the sequence x to z with

    z_0 = x_0,    z_t = (x_t - b_t) * exp(-a_t)  (t >= 1),    (a_t, b_t) = f(x_0, ..., x_{t-1}),

f a causal Transformer (input projection, learned position embedding, pre-norm attention / MLP layers,
a final LayerNorm and a zero-initialised output projection, so a new block is the identity) whose output
at position t - 1 gives the transform of token t. log|det dz/dx| = -sum_t sum_d a_t,d. The log-scale is
bounded, a = m tanh(a_raw / m) with m = `max_log_scale`, and f ends in a LayerNorm and a linear map, so
(a, b) are bounded whatever the input: the inverse, which runs f on its own outputs, cannot overflow.

The inverse is sequential, x_{t+1} = z_{t+1} exp(a_{t+1}) + b_{t+1}: T - 1 Transformer steps of one token
each, the keys and values of earlier tokens kept in a cache (`cache=False` reruns the whole prefix at
every step instead: the same numbers, for checking). Jacobi decoding (`jacobi=True`) solves the same
equations by fixed-point iterations, x <- z exp(a(x)) + b(x) for every token at once in one causal pass
(the GS-Jacobi idea of TarFlow's follow-up): token t is exact after at most t iterations, and it stops once
no token changes by more than a tolerance, the rest decoded sequentially after an iteration limit.

With class labels, `guidance` g applies classifier-free guidance at every step: (a, b) <- (a, b)_y +
g ((a, b)_y - (a, b)_unconditional), the unconditional pass using the mean of the class embeddings (label
-1), on the raw outputs before the bound.
An unconditional model is guided the same way against a pass whose attention logits are divided by
`attn_temp` (TarFlow's guidance without labels).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nfzoo.errors import ConfigError, UsageError
from nfzoo.flows.interfaces import Bijector


class ShapeError(UsageError, ValueError):
    """Images whose shape is not the one a TarFlow block was built for."""


HEAD_DIM = 64           # TarFlow's attention head width: heads = hidden // 64 unless given
MLP_EXPANSION = 4
NULL_LABEL = -1         # the label of the unconditional pass: the mean class embedding
JACOBI_TOL = 1e-3       # Jacobi decoding: a token is fixed once no value changes by more


def patch_grid(image_shape: Sequence[int], patch_size: int) -> Tuple[int, int]:
    """(tokens T, values per token D) of images `image_shape` = (C, H, W) cut into patch_size^2 patches; a
    ConfigError naming the sizes that fit when p does not divide H and W."""
    if len(image_shape) != 3:
        raise ConfigError(f"image_shape must be (C, H, W), got {tuple(image_shape)}")
    c, h, w = (int(s) for s in image_shape)
    p = int(patch_size)
    if p < 1 or h % p or w % p:
        fit = [q for q in range(1, min(h, w) + 1) if h % q == 0 and w % q == 0]
        raise ConfigError(f"patch_size={patch_size} does not divide the image size {h}x{w}; use one of "
                          f"{', '.join(map(str, fit))} (e.g. --set patch_size={fit[min(2, len(fit) - 1)]})")
    t = (h // p) * (w // p)
    if t < 2:
        raise ConfigError(f"patch_size={p} leaves one patch of a {h}x{w} image: an autoregressive flow needs "
                          "at least 2; use a smaller patch_size")
    return t, c * p * p


class _Attention(nn.Module):
    """Multi-head self-attention, causal over a full sequence, or one step against a key/value cache."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, h: Tensor, cache: Optional[Dict[str, Tensor]] = None,
                q_scale: Optional[Tensor] = None, keep: Optional[int] = None) -> Tensor:
        """Causal attention over `h` (B, n, width), after the tokens whose keys and values are in `cache`
        (each new token sees every cached one and the new ones up to itself); the keys and values of the
        first `keep` new tokens (None: all) are appended to the cache (Jacobi decoding keeps those of the
        tokens it has fixed, not of the ones still iterating)."""
        b, n, w = h.shape
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        if q_scale is not None:     # (B,): the attention logits of sample i divided by its temperature
            q = q * q_scale.view(b, 1, 1, 1)
        if cache is None:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            past = cache["k"].shape[2] if "k" in cache else 0
            if past:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            if keep is None or keep >= n:
                cache["k"], cache["v"] = k, v
            elif keep > 0:
                cache["k"], cache["v"] = k[:, :, :past + keep], v[:, :, :past + keep]
            if n == 1:      # one new token, after every cached one: it sees the whole cache and itself
                o = F.scaled_dot_product_attention(q, k, v)
            elif not past:
                o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:           # new token i (position past + i) sees positions <= past + i
                mask = torch.ones(n, past + n, dtype=torch.bool, device=h.device).tril(past)
                o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(o.transpose(1, 2).reshape(b, n, w))


class _Layer(nn.Module):
    """A pre-norm Transformer layer: h + attn(LN(h)), then h + MLP(LN(h)) (GELU, 4x expansion)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width)
        self.attn = _Attention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, MLP_EXPANSION * width), nn.GELU(),
                                 nn.Linear(MLP_EXPANSION * width, width))

    def forward(self, h: Tensor, cache: Optional[Dict[str, Tensor]] = None,
                q_scale: Optional[Tensor] = None, keep: Optional[int] = None) -> Tensor:
        h = h + self.attn(self.norm1(h), cache, q_scale, keep)
        return h + self.mlp(self.norm2(h))


class TarFlowBlock(Bijector):
    """One TarFlow block on images (B, C, H, W): patchify, optionally reverse the token order (`flip`),
    the autoregressive affine map of the module's docstring, and back. `context`: None, or for a
    class-conditional block (`num_classes`) the (B,) long labels (-1: the unconditional mean embedding;
    None: all unconditional). Sizes: `hidden` Transformer width, `layers` Transformer layers, `heads`
    attention heads (default hidden // 64, at least 1)."""

    def __init__(self, image_shape: Sequence[int], patch_size: int = 4, hidden: int = 128, layers: int = 2,
                 heads: Optional[int] = None, flip: bool = False, num_classes: Optional[int] = None,
                 max_log_scale: float = 4.0):
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)
        self.tokens, self.token_dim = patch_grid(self.image_shape, patch_size)
        self.patch_size = int(patch_size)
        heads = max(1, hidden // HEAD_DIM) if heads is None else int(heads)
        if hidden < 1 or layers < 1 or heads < 1 or hidden % heads:
            raise ConfigError(f"hidden={hidden} must be a positive multiple of heads={heads}, and layers={layers} "
                              ">= 1 (e.g. --set hidden=128 --set heads=2 --set layers=2)")
        if not (0 < max_log_scale <= 20 and math.isfinite(max_log_scale)):
            raise ConfigError(f"max_log_scale must be in (0, 20], got {max_log_scale}")
        if num_classes is not None and int(num_classes) < 1:
            raise ConfigError(f"num_classes must be >= 1 or null, got {num_classes}")
        self.flip = bool(flip)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.max_log_scale = float(max_log_scale)
        self.proj_in = nn.Linear(self.token_dim, hidden)
        self.pos = nn.Parameter(torch.randn(self.tokens, hidden) * 0.02)
        self.class_embed = (nn.Parameter(torch.randn(self.num_classes, hidden) * 0.02)
                            if self.num_classes is not None else None)
        self.layers = nn.ModuleList(_Layer(hidden, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.proj_out = nn.Linear(hidden, 2 * self.token_dim)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    # ------------------------------------------------------------------ layout
    def _seq(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, T, C p p), tokens in raster order (reversed with `flip`)."""
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ShapeError(f"this TarFlow block was built for images of shape {self.image_shape} (C, H, W), got "
                             f"{tuple(x.shape)}: pass (B, {', '.join(map(str, self.image_shape))}) tensors, or build "
                             "the flow with image_shape set to your images' size")
        b, c, h, w = x.shape
        p = self.patch_size
        s = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, self.tokens, -1)
        return s.flip(1) if self.flip else s

    def _image(self, s: Tensor) -> Tensor:
        """The inverse of `_seq`."""
        c, h, w = self.image_shape
        p = self.patch_size
        s = s.flip(1) if self.flip else s
        return s.reshape(-1, h // p, w // p, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(-1, c, h, w)

    # ------------------------------------------------------------------- the net
    def _class(self, context: Optional[Tensor], n: int) -> Optional[Tensor]:
        """(n, 1, hidden) class embeddings (label -1 or no context: the mean embedding), or None."""
        if self.class_embed is None:
            if context is not None:
                raise ValueError("this TarFlow block is unconditional: pass context=None")
            return None
        mean = self.class_embed.mean(0)
        if context is None:
            return mean.expand(n, 1, -1)
        y = context.reshape(-1).long()
        if y.numel() != n:
            raise ValueError(f"context must hold {n} labels, got {y.numel()}")
        emb = self.class_embed[y.clamp(min=0)]
        return torch.where((y < 0)[:, None], mean, emb)[:, None]

    def _net(self, tokens: Tensor, start: int, cls: Optional[Tensor],
             caches: Optional[List[Dict[str, Tensor]]] = None, q_scale: Optional[Tensor] = None,
             keep: Optional[int] = None) -> Tensor:
        """Raw outputs (B, L, 2D) at positions start..start+L-1 for `tokens` there (all earlier tokens in
        `caches`, or none when start is 0 and caches is None); `q_scale` (B,): 1 / attention temperature;
        `keep`: append the keys and values of the first `keep` tokens (None: all) to `caches`."""
        h = self.proj_in(tokens) + self.pos[start:start + tokens.shape[1]]
        if cls is not None:
            h = h + cls
        for i, layer in enumerate(self.layers):
            h = layer(h, None if caches is None else caches[i], q_scale, keep)
        return self.proj_out(self.norm(h))

    def _bound(self, a_raw: Tensor) -> Tensor:
        m = self.max_log_scale
        return m * torch.tanh(a_raw / m)

    # -------------------------------------------------------------- directions
    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """x -> z = (x_t - b_t) exp(-a_t) for t >= 1 (x_0 unchanged); logdet = -sum a."""
        s = self._seq(x)
        out = self._net(s[:, :-1], 0, self._class(context, s.shape[0]))
        a_raw, b = out.chunk(2, -1)
        a = self._bound(a_raw)
        z = torch.cat([s[:, :1], (s[:, 1:] - b) * torch.exp(-a)], 1)
        return self._image(z), -a.flatten(1).sum(1)

    def inverse(self, z: Tensor, context: Optional[Tensor] = None, guidance: float = 0.0,
                guidance_anneal: bool = False, attn_temp: float = 1.0, cache: bool = True,
                jacobi: bool = False, jacobi_tol: float = JACOBI_TOL, jacobi_iters: Optional[int] = None,
                stats: Optional[List[Dict[str, int]]] = None) -> Tuple[Tensor, Tensor]:
        """z -> x, one token at a time (T - 1 steps); logdet = +sum a. `guidance` g: each step's (a, b) <-
        guided + g (guided - weak), g * t / (T - 1) at token t if `guidance_anneal`; the weak pass drops the
        label (label -1, the mean class embedding; class-conditional blocks with labels in `context`) and
        divides its attention logits by `attn_temp` (TarFlow's guidance of unconditional models: attn_temp
        != 1). `cache=False`: rerun the whole prefix at each step (no key/value cache).

        `jacobi`: Jacobi (fixed-point) decoding instead. Starting from x = z, each iteration recomputes
        every token not yet fixed from the current x in one causal pass, x_t <- z_t exp(a_t(x_<t)) +
        b_t(x_<t); the tokens before the first one whose change (max abs over the batch and its values)
        exceeds `jacobi_tol` are fixed, and so is the first unfixed token after every iteration (its inputs
        are fixed: exact), so T - 1 iterations reproduce the sequential inverse. Fixed tokens' keys and
        values go to the cache (in the same pass) and later iterations run only on the rest. After
        `jacobi_iters` iterations (default T - 1) the tokens still unfixed are decoded sequentially with the
        cache.

        `stats`: a list that gets this block's counts appended: {"iterations" (Jacobi's), "sequential_steps",
        "net_calls" (Transformer calls one after another: the serial depth), "tokens_computed" (tokens run
        through the Transformer per sample, the two passes of guidance counted once), "tokens"}."""
        zs = self._seq(z)
        n = zs.shape[0]
        guided = guidance != 0
        q_scale = None
        if guided:
            labelled = self.class_embed is not None and context is not None
            if not labelled and attn_temp == 1.0:
                raise ValueError("guidance needs labels (a class-conditional TarFlow) or attn_temp != 1")
            if labelled:
                assert context is not None   # labelled implies it
                y = context.reshape(-1).long()
                cls = self._class(torch.cat([y, torch.full_like(y, NULL_LABEL)]), 2 * n)
            else:
                cls = self._class(context, n)
                cls = None if cls is None else torch.cat([cls, cls])
            q_scale = torch.cat([zs.new_ones(n), zs.new_full((n,), 1.0 / attn_temp)])
        else:
            cls = self._class(context, n)
        steps = self.tokens - 1
        if jacobi:
            if not cache:
                raise ValueError("Jacobi decoding keeps the fixed tokens in a key/value cache: cache=False is "
                                 "for the sequential inverse")
            if not (jacobi_tol > 0 and math.isfinite(jacobi_tol)):
                raise ValueError(f"jacobi_tol must be a finite number > 0, got {jacobi_tol!r}")
            if jacobi_iters is not None and (isinstance(jacobi_iters, bool) or int(jacobi_iters) != jacobi_iters
                                             or jacobi_iters < 1):
                raise ValueError(f"jacobi_iters must be an integer >= 1, got {jacobi_iters!r}")

        def affine(tokens: Tensor, start: int, caches: Optional[List[Dict[str, Tensor]]],
                   keep: Optional[int] = None, skip: int = 0) -> Tuple[Tensor, Tensor]:
            """(a, b) (B, L, D) of tokens start+skip+1..start+L from the net at positions start.. (the first
            `skip` positions' outputs dropped: tokens run only to fill the cache), guided; `keep`: _net's."""
            out = self._net(torch.cat([tokens, tokens]) if guided else tokens, start, cls, caches, q_scale, keep)
            if skip:
                start, out = start + skip, out[:, skip:]
            if guided:
                cond, uncond = out[:n], out[n:]
                g: Union[float, Tensor] = guidance
                if guidance_anneal:
                    if out.shape[1] == 1:
                        g = guidance * (start + 1) / steps
                    else:
                        t = torch.arange(start + 1, start + 1 + out.shape[1], device=out.device, dtype=out.dtype)
                        g = (guidance * t / steps)[:, None]
                out = cond + g * (cond - uncond)
            a_raw, b = out.chunk(2, -1)
            return self._bound(a_raw), b

        caches = [{} for _ in self.layers] if cache else None
        xs: List[Tensor] = [zs[:, 0]]
        logdet = zs.new_zeros(n)
        start = 0                      # the sequential loop decodes tokens start+1..T-1
        calls = computed = iters = 0   # Transformer calls (serial depth), tokens run through it per sample
        if jacobi:
            assert caches is not None
            limit = steps if jacobi_iters is None else int(jacobi_iters)
            x, a_fixed = zs, zs[:, 1:1]     # x^0 = z; the log-scales of tokens 1..fixed-1
            fixed, cached = 1, 0            # tokens < fixed are final; positions < cached in the caches
            while fixed < self.tokens and iters < limit:
                # one causal pass from the first uncached position: the fixed tokens not yet cached (their
                # keys and values kept) and the rest, whose outputs give the new values of tokens >= fixed
                a, b = affine(x[:, cached:-1], cached, caches, keep=fixed - 1 - cached, skip=fixed - 1 - cached)
                calls, computed = calls + 1, computed + self.tokens - 1 - cached
                cached = fixed - 1
                new = zs[:, fixed:] * torch.exp(a) + b
                change = (new - x[:, fixed:]).abs().amax(dim=(0, 2))      # (T - fixed,)
                ok = (change <= jacobi_tol).to(torch.int64)
                take = max(1, int(ok.cumprod(0).sum()))                  # the first unfixed token is exact
                x = torch.cat([x[:, :fixed], new], 1)
                a_fixed = torch.cat([a_fixed, a[:, :take]], 1)
                fixed += take
                iters += 1
            logdet = a_fixed.flatten(1).sum(1)
            x = x[:, :fixed]
            if fixed < self.tokens and cached < fixed - 1:
                # fallback: the unfixed tokens one at a time (below), the fixed ones' keys and values cached
                seq = x[:, cached:fixed - 1]
                self._net(torch.cat([seq, seq]) if guided else seq, cached, cls, caches, q_scale)
                calls, computed = calls + 1, computed + fixed - 1 - cached
            xs, start = list(x.unbind(1)), fixed - 1
        for t in range(start, steps):
            if cache:
                a, b = affine(xs[-1][:, None], t, caches)
            else:
                a, b = affine(torch.stack(xs, 1), 0, None, skip=t)
            calls, computed = calls + 1, computed + (1 if cache else t + 1)
            a, b = a[:, 0], b[:, 0]
            xs.append(zs[:, t + 1] * torch.exp(a) + b)
            logdet = logdet + a.sum(1)
        if stats is not None:
            stats.append({"iterations": iters, "sequential_steps": steps - start, "net_calls": calls,
                          "tokens_computed": computed, "tokens": self.tokens})
        return self._image(torch.stack(xs, 1)), logdet


class TarFlow(Bijector):
    """A stack of `blocks` TarFlowBlocks on images, the token order reversed in every odd block (TarFlow's
    alternating permutation). forward runs them in order; inverse in reverse order, each sequentially with
    its key/value cache (or by Jacobi decoding), passing the inverse's options to every block."""

    def __init__(self, image_shape: Sequence[int], patch_size: int = 4, hidden: int = 128, blocks: int = 4,
                 layers: int = 2, heads: Optional[int] = None, num_classes: Optional[int] = None,
                 max_log_scale: float = 4.0):
        super().__init__()
        if int(blocks) < 1:
            raise ConfigError(f"blocks must be >= 1, got {blocks}")
        self.blocks = nn.ModuleList(
            TarFlowBlock(image_shape, patch_size, hidden, layers, heads, flip=k % 2 == 1, num_classes=num_classes,
                         max_log_scale=max_log_scale) for k in range(int(blocks)))

    def forward(self, x: Tensor, context: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """x -> z through every block in order; logdet is the sum of theirs."""
        logdet = x.new_zeros(x.shape[0])
        for block in self.blocks:
            x, ld = block(x, context)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z: Tensor, context: Optional[Tensor] = None, guidance: float = 0.0,
                guidance_anneal: bool = False, attn_temp: float = 1.0, cache: bool = True,
                jacobi: bool = False, jacobi_tol: float = JACOBI_TOL, jacobi_iters: Optional[int] = None,
                stats: Optional[List[Dict[str, int]]] = None) -> Tuple[Tensor, Tensor]:
        """z -> x through every block's inverse (sequential, or Jacobi decoding with `jacobi`), last block
        first (options: TarFlowBlock.inverse; `stats` gets one entry per block, in the order decoded)."""
        logdet = z.new_zeros(z.shape[0])
        for block in reversed(self.blocks):
            assert isinstance(block, TarFlowBlock)   # the ModuleList holds TarFlowBlocks only
            z, ld = block.inverse(z, context, guidance=guidance, guidance_anneal=guidance_anneal,
                                  attn_temp=attn_temp, cache=cache, jacobi=jacobi, jacobi_tol=jacobi_tol,
                                  jacobi_iters=jacobi_iters, stats=stats)
            logdet = logdet + ld
        return z, logdet
