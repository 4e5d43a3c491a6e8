"""`nfzoo bench serve`: the warm seconds of each gallery request kind (sample, interpolate, inpaint, score), as the
page sends them, through the app (FastAPI's TestClient: the form parsed, the worker thread, the deadline, the
PNG answer), against the same work called directly (the core's sampling pipeline, nfzoo_heads' interpolate,
inpaint and score) on the same loaded model. One more row times the inpainting under the two ways a request is
stopped (nfzoo_gallery.work.Gallery.run): the deadline's torch function mode around every operation, and the
check between iterations that the inpaint kind uses.

Torch threads: the gallery's (`nfzoo serve`'s default: OMP_NUM_THREADS, else half the CPUs, 1 to 4). Every time
is the median of the repeats after a warm-up (the least is given too): `nfzoo bench serve --out FILE.json`
writes it with the command, date, commit, threads and load average; the document says the CPUs too."""
from __future__ import annotations

import io
import os
import statistics
import threading
import time
from typing import Any, Callable, Dict, List, Optional

MODEL = "inverse-flow-mnist5k"
INPAINT_BOX = "8,8,20,20"          # the page's default box (12 x 12 in the 28 x 28 digit)
REFERENCE_IMAGES = 256             # the typicality reference of the score rows (the server's: the whole split)


def _times(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> List[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _png(x: Any) -> bytes:
    from nfzoo.imageio import single_png_bytes

    return single_png_bytes(x)


def bench_serve(quick: bool = False, log: Callable[[str], None] = print, model: Optional[str] = None) -> Dict:
    """Rows {case: the request kind, baseline: the direct call, candidate: the gallery request, baseline_s,
    candidate_s (medians), ratio, candidate_min_s, server_s (the model's seconds the answer reports), form};
    and the inpainting's stop mechanism: torch function mode (baseline) vs a check per iteration (candidate)."""
    import torch
    from fastapi.testclient import TestClient

    from nfzoo.bench.timing import device_name, load_average, row
    from nfzoo.data import ArrayDataset, load_dataset
    from nfzoo.flows.pipeline import SamplingPipeline
    from nfzoo_heads import box_mask, inpaint, interpolate, is_diffusion, parse_box, score
    from nfzoo_heads.scoring import bpd_of

    from .app import create_app
    from .budget import Deadline
    from .cli import default_threads
    from .features import INPAINT_DEFAULTS
    from .inputs import split_image
    from .zoo import resolve

    name = resolve(model or MODEL).name            # a zoo name (the gallery serves no other)
    torch.set_num_threads(default_threads())
    repeat = 3 if quick else 7

    def reference(m: Any, dataset: str) -> Dict[str, Any]:
        ds = load_dataset(dataset, "train")
        if isinstance(ds, ArrayDataset):
            x, _ = ds.batch(torch.arange(REFERENCE_IMAGES))
        else:                               # a data set read from files has no batch()
            x = torch.stack([ds[i][0] for i in range(REFERENCE_IMAGES)])
        return {"dataset": dataset, "mean_bpd": float(bpd_of(m, x).mean()), "images": REFERENCE_IMAGES}

    rows = []
    app = create_app(capacity=1, reference_fn=reference)
    with TestClient(app) as client:
        cache = app.state.cache
        slot, load_s = cache.get(name)
        m, dataset = slot.model, slot.entry.dataset
        log(f"loaded {name} in {load_s:.2f} s; torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs")
        if not dataset:
            from nfzoo.errors import UsageError

            raise UsageError(f"bench serve needs a model with a test split (a data set): {name} names none")
        cache.reference(name, start=True, wait=600)     # before timing: it computes in a background thread
        a, _, _ = split_image(dataset, 0)
        b, _, _ = split_image(dataset, 1)
        pipe = SamplingPipeline(m, None, None, {}, name=name)
        plan = pipe.plan(16, None, False)
        mask = box_mask(a.shape, parse_box(INPAINT_BOX))
        options = dict(INPAINT_DEFAULTS["repaint" if is_diffusion(m) else "latent"])
        png = _png(a)
        cases = [
            ("sample", {"model": name, "n": 16, "seed": 0}, None, "SamplingPipeline(16 images, default sampler)",
             lambda: pipe(plan, seed=0)),
            ("interpolate", {"model": name, "a_index": 0, "b_index": 1, "steps": 8}, None,
             "nfzoo_heads.interpolate(8 images)", lambda: interpolate(m, a, b, 8)),
            ("inpaint", {"model": name, "index": 0, "box": INPAINT_BOX, "seed": 0}, None,
             f"nfzoo_heads.inpaint({options})",
             lambda: inpaint(m, a.unsqueeze(0), mask, torch.Generator().manual_seed(0), **options)),
            ("score", {"model": name, "seed": 0}, {"files": ("digit.png", io.BytesIO(png), "image/png")},
             "nfzoo_heads.score(1 image)", lambda: score(m, a.unsqueeze(0), 1.0, 0)),
        ]
        for kind, form, files, direct_what, direct in cases:
            answers: List[Dict[str, Any]] = []

            def request() -> None:
                if files:
                    for f in files.values():
                        f[1].seek(0)
                r = client.post(f"/api/{kind}", data=form, files=files)
                if r.status_code != 200:
                    raise RuntimeError(f"POST /api/{kind} answered {r.status_code}: {r.text[:300]}")
                answers.append(r.json())

            log(f"{kind}: the gallery request, then the direct call ({repeat} times each after a warm-up)")
            via = _times(request, repeat)
            alone = _times(direct, repeat)
            rows.append(row(kind, direct_what, "gallery request", statistics.median(alone), statistics.median(via),
                            baseline_min_s=min(alone), candidate_min_s=min(via),
                            server_s=statistics.median(a["seconds"] for a in answers[1:]),
                            form={k: v for k, v in form.items()} | ({"files": "1 PNG"} if files else {})))

        # the inpainting's stop mechanism: what the kind used before (the mode) against what it uses now
        never = threading.Event()

        def under_mode() -> None:
            with Deadline(3600.0, never, never, "bench"):
                inpaint(m, a.unsqueeze(0), mask, torch.Generator().manual_seed(0), **options)

        def stepwise() -> None:
            d = Deadline(3600.0, never, never, "bench")
            inpaint(m, a.unsqueeze(0), mask, torch.Generator().manual_seed(0),
                    progress=lambda done, total: d.check(), **options)

        log("inpaint: the deadline as a torch function mode, then checked per iteration")
        mode_s = _times(under_mode, repeat)
        step_s = _times(stepwise, repeat)
        rows.append(row("inpaint stop check", "torch function mode (every operation)", "check per iteration",
                        statistics.median(mode_s), statistics.median(step_s), baseline_min_s=min(mode_s),
                        candidate_min_s=min(step_s)))
    load = load_average() or None
    return {"bench": "serve", "device": device_name("cpu"), "model": name, "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "load_average_end": load, "repeats": repeat, "rows": rows,
            "notes": [f"median of {repeat} warm requests (after one warm-up) per kind; candidate_s is the whole "
                      "request through the app in-process (TestClient: form, worker thread, deadline, PNG answer), "
                      "server_s the model's seconds it reports, baseline_s the same work called directly",
                      f"score's typicality reference: the first {REFERENCE_IMAGES} training images (computed "
                      "before timing); the server's default uses the whole split, which changes no request's time",
                      "timings on a machine with other work running are higher: see load_average"]}
