"""The gallery's features, each the work of one request kind, run by `Gallery.work` in a worker thread: the
request's values checked with the CLI's rules (nfzoo_gallery.inputs), the model loaded, its computation run
by `Gallery.run` (lock, deadline, measured cost), the images as PNG data URLs. Interpolation, inpainting and
scoring are the heads' public functions (nfzoo_heads, a dependency of this distribution)."""
from __future__ import annotations

import base64
from typing import Any, Dict, List, Optional

from fastapi import UploadFile

from nfzoo.errors import UsageError
from nfzoo_heads import box_mask, inpaint, interpolate, is_diffusion, parse_box, score

from .inputs import (
    MAX_GRID,
    MAX_INTERPOLATION,
    MAX_SCORE_FILES,
    MAX_STEPS,
    MAX_TEMPERATURE,
    check_float,
    check_int,
    check_label,
    check_seed,
    check_shape,
    pick_image,
    read_upload,
    safe_name,
)
from .work import Gallery, Ticket

INPAINT_DEFAULTS = {"latent": {"iters": 50, "lr": 0.2}, "repaint": {"steps": 20, "resample": 2}}
"""The page's inpainting settings, which a request's own (iters or steps) replace one by one: fewer iterations
than `nfzoo inpaint`'s (300; 50 steps x 3 resamplings) so that one digit answers in about a second on a CPU, and
for flows a larger Adam step (0.2 against 0.05), which 50 iterations need. On 100 mnist5k test digits (the
page's 12x12 box, seed 0, each digit alone as a request does it) inverse-flow-mnist5k's PSNR in the box is
7.29 +- 3.49 dB at lr 0.2 against 6.22 +- 2.07 dB at 0.05, in the same time
(docs/results/bench-serve/inpaint-psnr.json)."""


def data_url(png: bytes) -> str:
    """PNG bytes as a data: URL the page shows as is."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _read(upload: Optional[UploadFile]) -> Optional[bytes]:
    return None if upload is None else upload.file.read()


def sample_job(g: Gallery, t: Ticket, model: str, n: Any, seed: Any, temperature: Any, label: Any, per_class: bool,
               sampler: Optional[str], steps: Any, eta: Any) -> Dict[str, Any]:
    """A grid of samples, as `nfzoo sample` draws them (the same images for the same settings)."""
    from nfzoo.flows.pipeline import SamplingPipeline
    from nfzoo.imageio import grid_png_bytes

    n = check_int("n", n, 1, MAX_GRID)
    seed = check_seed(seed)
    temperature = check_float("temperature", temperature, 0, MAX_TEMPERATURE)
    steps = None if steps is None else check_int("steps", steps, 1, MAX_STEPS)
    eta = check_float("eta", eta, 0, 1)
    sampler = sampler.strip() if sampler and sampler.strip() else None
    slot, load_s = g.loaded(model)
    m = slot.model
    given = {k: v for k, v in (("steps", steps), ("eta", eta)) if v is not None}
    pipe = SamplingPipeline(m, sampler, temperature, given, name=slot.name)   # checked as `nfzoo sample` checks
    plan = pipe.plan(n, label, per_class)
    if plan.total > MAX_GRID:
        raise UsageError(f"a grid here holds at most {MAX_GRID} images and this asks for {plan.total} "
                         f"({n} per class): ask for fewer")
    units = plan.total * int(pipe.options.get("steps") or 1)
    out, seconds = g.run(t, slot, pipe.sampler.name, units, f"sampling {plan.total} images with {pipe.sampler.name}",
                         "fewer images or steps", lambda: pipe(plan, seed=seed))
    return {"image": data_url(grid_png_bytes(out.images, plan.nrow)), "n": plan.total, "nrow": plan.nrow,
            "seed": seed, "temperature": pipe.temperature, "sampler": pipe.sampler.name, "options": pipe.options,
            "label": label, "per_class": per_class, "seconds": seconds, "load_seconds": load_s}


def interpolate_job(g: Gallery, t: Ticket, model: str, steps: Any, a_index: Any, b_index: Any,
                    a_file: Optional[UploadFile], b_file: Optional[UploadFile]) -> Dict[str, Any]:
    """The spherical latent path between two images (nfzoo_heads.interpolate), as `nfzoo augment
    --interpolate` draws it."""
    from nfzoo.imageio import grid_png_bytes

    steps = check_int("steps", steps, 2, MAX_INTERPOLATION)
    slot, load_s = g.loaded(model)
    m, entry = slot.model, slot.entry
    a = pick_image("image A", a_index, a_file, _read(a_file), slot.name, entry.dataset, m.image_shape)
    b = pick_image("image B", b_index, b_file, _read(b_file), slot.name, entry.dataset, m.image_shape)
    path, seconds = g.run(t, slot, "spherical", steps, f"an interpolation of {steps} images", "fewer steps",
                          lambda: interpolate(m, a, b, steps))
    return {"image": data_url(grid_png_bytes(path, nrow=steps)), "steps": steps, "seconds": seconds,
            "load_seconds": load_s}


def inpaint_job(g: Gallery, t: Ticket, model: str, box: str, index: Any, file: Optional[UploadFile], seed: Any,
                label: Any, iters: Any, steps: Any) -> Dict[str, Any]:
    """Fill a box of an image under the model's prior (nfzoo_heads.inpaint); the other pixels come back
    unchanged. iters (flows) or steps (diffusion) as in `nfzoo inpaint --set`, in place of INPAINT_DEFAULTS's (the
    method's other settings are the page's)."""
    import torch

    from nfzoo.imageio import single_png_bytes

    seed = check_seed(seed)
    bx = parse_box(box)
    options = {}
    if iters is not None:
        options["iters"] = check_int("iters", iters, 0, MAX_STEPS)
    if steps is not None:
        options["steps"] = check_int("steps", steps, 1, MAX_STEPS)
    slot, load_s = g.loaded(model)
    m = slot.model
    label = check_label(m, slot.name, label)
    method = "repaint" if is_diffusion(m) else "latent"
    if not set(options) - set(INPAINT_DEFAULTS[method]):    # else the heads name the option the method lacks
        options = {**INPAINT_DEFAULTS[method], **options}
    x = pick_image("the image", index, file, _read(file), slot.name, slot.entry.dataset, m.image_shape)
    mask = box_mask(x.shape, bx)
    y = None if label is None else torch.tensor([label], device=m.device)
    units = max(1, int(options.get("iters", 0)) or int(options.get("steps", 0)) * int(options.get("resample", 1)))
    filled, seconds = g.run(t, slot, method, units,
                            f"inpainting with {options}", "fewer iterations or steps",
                            lambda check: inpaint(m, x.unsqueeze(0), mask, torch.Generator().manual_seed(seed), y=y,
                                                  progress=lambda done, total: check(), **options),
                            stepwise=True)      # checked after every iteration (or step) of the fill
    return {"image": data_url(single_png_bytes(filled[0])), "input": data_url(single_png_bytes(x)),
            "box": list(bx), "filled_pixels": int(mask.sum()), "options": options, "seed": seed,
            "seconds": seconds, "load_seconds": load_s}


def score_job(g: Gallery, t: Ticket, model: str, files: List[UploadFile], seed: Any, wait: bool) -> Dict[str, Any]:
    """Per-image bpd and typicality of uploaded images (nfzoo_heads.score), as `nfzoo score` gives them.
    The typicality needs the model's reference (computed once, in the background): until it is ready the
    records hold bpd only and "reference" says "computing" (wait=true waits for it, within the budget)."""
    import torch

    seed = check_seed(seed)
    if len(files) > MAX_SCORE_FILES:
        raise UsageError(f"at most {MAX_SCORE_FILES} images a request, got {len(files)}: score fewer at a time")
    slot, load_s = g.loaded(model)
    m = slot.model
    xs = [check_shape(read_upload(_read(f) or b"", f.filename, m.image_shape, slot.name), safe_name(f.filename),
                      slot.name, m.image_shape) for f in files]     # every file checked before scoring
    ref = g.cache.reference(slot.name, start=True, wait=t.budget if wait else False)
    mean = ref["reference"]["mean_bpd"] if ref["state"] == "ready" else None
    records, seconds = g.run(t, slot, "bpd", len(xs), f"scoring {len(xs)} images", "fewer images",
                             lambda: score(m, torch.stack(xs), mean, seed))
    return {"records": [{"name": safe_name(f.filename), **r} for f, r in zip(files, records)],
            "reference": ref, "seed": seed, "seconds": seconds, "load_seconds": load_s}
