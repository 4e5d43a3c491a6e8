"""`nfzoo sample`: images from a model, as a PNG grid or a folder of PNGs streamed in constant memory."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from nfzoo.constants import GRID_MAX  # images in one PNG grid (sample --out FILE.png); more: --out DIR

from ..toolkit import (
    MAX_COUNT,
    MAX_NPROC,
    MAX_STEPS,
    check_output_dir,
    check_output_file,
    err,
    fail,
    finite,
    load_model,
    no_nul,
    parse_device,
    sampler_option,
    sampler_options,
    seed_option,
    temperature_option,
)
from .ranks import command_argv, launch_ranks, rank_context

OTHER_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm",
                        ".pnm", ".ico", ".avif", ".heic")


def sample_output(raw: str) -> str:
    """What `sample --out` names: "file" (a .png grid) or "dir" (one PNG per sample). Refuses an empty
    name and image suffixes other than .png (only PNG is written)."""
    if not str(raw).strip():
        fail("--out is empty: give FILE.png for a grid or DIR for one PNG per sample")
    no_nul(str(raw), "--out")
    suffix = Path(raw).suffix.lower()
    if suffix == ".png":
        return "file"
    if suffix in OTHER_IMAGE_SUFFIXES:
        fail(f"--out {raw}: only PNG is written; give FILE.png for a grid or DIR (a name without an image "
             "suffix) for one PNG per sample")
    return "dir"


def sample_cmd(ctx: typer.Context,
               model: str = typer.Option(..., "--model", "-m", help="pretrained name, family name or "
                                         "model directory"),
               n: Optional[int] = typer.Option(None, "-n", min=1, max=MAX_COUNT, help="number of samples (per "
                                               "class with --per-class) [default: 64, or 8 per class]; a "
                                               f"FILE.png grid holds at most {GRID_MAX}"),
               temperature: float = temperature_option(),
               label: Optional[int] = typer.Option(None, "--label", min=0, max=2 ** 31 - 1,
                                                   help="class label (conditional models)"),
               per_class: bool = typer.Option(False, "--per-class", help="one row per class"),
               sampler: Optional[str] = typer.Option(None, "--sampler", help="a registered sampler"),
               steps: Optional[int] = typer.Option(None, "--steps", min=1, max=MAX_STEPS,
                                                   help="sampler steps (diffusion)"),
               eta: Optional[float] = typer.Option(None, "--eta", callback=finite(0, 1), help="DDIM noise "
                                                   "scale: 0 deterministic [default], 1 ancestral over the "
                                                   "same steps"),
               sampler_opts: List[str] = sampler_option(),
               seed: int = seed_option(),
               out_path: str = typer.Option("samples.png", "--out", "-o",
                                            help=f"FILE.png for a grid (at most {GRID_MAX} images), or DIR "
                                            "for one PNG per sample, streamed in constant memory (and "
                                            f"grid.png of the first {GRID_MAX}); DIR must be new or empty"),
               overwrite: bool = typer.Option(False, "--overwrite", help="--out DIR may hold files: replace "
                                              "those of the same names"),
               device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, cuda:1, ..."),
               nproc: int = typer.Option(1, "--nproc", min=1, max=MAX_NPROC, help="processes on this host "
                                         "(launches torchrun); the images do not depend on it"),
               compile_: bool = typer.Option(False, "--compile", help="torch.compile the flow (its first call "
                                             "compiles; where it cannot, a warning says why and it runs "
                                             "eager)")):
    """Sample images from a model and write them as a PNG grid (or a folder of PNGs). Samples come in
    seeded chunks of 250, so under torchrun (or with --nproc N) the ranks share the work and the images
    are the same as on one process. The destination is checked before any sampling."""
    kind = sample_output(out_path)              # "file" (a grid) or "dir"; refuses "" and x.jpg
    out_p = Path(out_path)
    if nproc != 1:
        parse_device(device)
        if kind == "dir":          # checked (and made) once here: the ranks then fill it together
            check_output_dir(out_p, overwrite=overwrite)
        else:
            check_output_file(out_p)
        return launch_ranks(nproc, command_argv(ctx, extra={"overwrite": True} if kind == "dir" else None))
    dev = parse_device(device)
    dist = rank_context(dev)
    main_rank = dist is None or dist.is_main
    from nfzoo.flows.pipeline import SamplingPipeline

    m = load_model(model, dev)
    pipe = SamplingPipeline(m, sampler, temperature, sampler_options(m, steps, eta, sampler_opts, sampler),
                            name=model, compile=compile_, on_warning=warning if main_rank else None)
    # labels are a rule made per chunk (nfzoo.flows.generation), never a tensor of all n
    plan = pipe.plan(n, label, per_class)
    if plan.labels is not None and label is None and not per_class and main_rank:   # every class in turn
        err.print(f"{model} is class-conditional: sampling classes 0..{m.num_classes - 1} in turn "
                  "(--label L for one class, --per-class for a row per class)", highlight=False)
    if kind == "file" and plan.total > GRID_MAX:
        fail(f"a grid holds at most {GRID_MAX} images and this asks for {plan.total}: write one PNG per sample "
             f"with --out DIR (it streams in constant memory; DIR/grid.png shows the first {GRID_MAX})")
    # the destination is checked before any sampling (every rank checks; nobody writes before all did)
    if kind == "file":
        check_output_file(out_p)
    else:
        check_output_dir(out_p, overwrite=overwrite)
    if dist is not None:
        dist.barrier()
    from contextlib import nullcontext

    status = err.status(f"sampling {plan.total} images from {model}") if main_rank else nullcontext()
    with status:
        if kind == "file":
            pipe.save_grid(out_p, plan, seed=seed, dist=dist)
            written = str(out_p)
        else:
            pipe.save_folder(out_p, plan, seed=seed, dist=dist)
            written = f"{out_p}/ ({plan.total} PNGs and grid.png)"
    if dist is not None:   # the ranks leave together and shut the process group down (no race at exit)
        dist.barrier()
        dist.close()
    if main_rank:
        err.print(f"wrote {written}")


def warning(reason: str) -> None:
    """Print a reason to run eager (`--compile`) as a `warning:` line."""
    err.print(f"[yellow]warning:[/] {reason}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `sample` to `app`."""
    app.command("sample")(sample_cmd)
