"""The heads' CLI commands (added through register_commands): they parse, call the heads, and render.
Bad input exits 2 with a message, before anything is written. They use only the CLI's public toolkit
(nfzoo_cli.toolkit); the app maps every command's errors to exit codes."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from nfzoo_cli.toolkit import (
    MAX_STEPS,
    check_output_file,
    err,
    finite,
    load_model,
    out,
    parse_sets,
    print_json,
    progress_task,
    rich_progress,
    sampler_options,
    seed_option,
    temperature_option,
)

MAX_IMAGES = 1_000_000      # synth / augment draw their images in memory and write the folder at once


def synth_cmd(model: str = typer.Option(..., "--model", "-m", help="a class-conditional model (e.g. glem-mnist5k)"),
              n: int = typer.Option(..., "--n", "-n", min=1, max=MAX_IMAGES,
                                    help="number of images (classes balanced)"),
              out_dir: Path = typer.Option(..., "--out", "-o", help="a new folder (ImageFolder layout)"),
              temperature: float = temperature_option(),
              sampler: Optional[str] = typer.Option(None, "--sampler", help="a registered sampler (e.g. rfcm)"),
              steps: Optional[int] = typer.Option(None, "--steps", min=1, max=MAX_STEPS,
                                                  help="sampler steps (diffusion)"),
              seed: int = seed_option(),
              device: Optional[str] = typer.Option(None, "--device"),
              json_: bool = typer.Option(False, "--json", help="print the manifest as JSON")):
    """Write a labelled data set sampled from a class-conditional model: OUT/<class>/NNNNNN.png and
    OUT/manifest.json (counts per class). OUT appears only when complete; read it as --dataset folder:OUT."""
    from nfzoo.errors import UsageError

    from .images import check_new_output
    from .synth import check_conditional, synthesize

    if n < 1:
        raise UsageError(f"--n must be >= 1, got {n}")
    check_new_output(out_dir)
    m = load_model(model, device, sampler)
    check_conditional(m, model)
    temperature = m.default_temperature if temperature is None else temperature
    opts = sampler_options(m, steps)
    m.sampler.check(m, temperature=temperature, **opts)
    with rich_progress() as prog:
        manifest = synthesize(m, n, out_dir, temperature, seed, progress=progress_task(prog, f"sampling {n} images"),
                              model_name=model, **opts)
    if json_:
        print_json(manifest)
        return
    err.print(f"wrote {out_dir}/ ({n} PNGs in {len(manifest['classes'])} class folders, manifest.json; "
              f"{manifest['redrawn_nonfinite']} non-finite samples redrawn)", highlight=False)


def augment_cmd(model: str = typer.Option(..., "--model", "-m", help="a flow (its encode / decode)"),
                dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="labelled data set whose "
                                                      "training split is augmented"),
                n: int = typer.Option(1000, "--n", "-n", min=1, max=MAX_IMAGES, help="number of augmented images"),
                out_path: Path = typer.Option(..., "--out", "-o", help="a new folder (or FILE.png with "
                                              "--interpolate)"),
                mode: str = typer.Option("mixup", "--mode", help="mixup (same class) | pca (principal "
                                         "directions)"),
                strength: float = typer.Option(0.5, "--strength", callback=finite(0, 1e6), help="pca: scale of "
                                               "the move, in standard deviations of each direction"),
                interpolate: Optional[List[Path]] = typer.Option(None, "--interpolate", help="two images: "
                                                                 "write an interpolation grid instead"),
                steps: int = typer.Option(8, "--steps", min=2, max=1024, help="images in the interpolation"),
                seed: int = seed_option(),
                data_root: Optional[str] = typer.Option(None, "--data-root"),
                device: Optional[str] = typer.Option(None, "--device"),
                json_: bool = typer.Option(False, "--json")):
    """Latent augmentation: write N augmented images of a data set's training split (ImageFolder, with a
    manifest), or with --interpolate A.png --interpolate B.png a PNG of the path between two images."""
    from nfzoo.errors import UsageError

    from .augment import MODES, augment_folder
    from .augment import interpolate as interp
    from .images import check_new_output, read_image, save_png

    if interpolate:
        if len(interpolate) != 2:
            raise UsageError(f"--interpolate takes exactly two images, got {len(interpolate)}")
        if out_path.suffix.lower() != ".png":
            raise UsageError(f"with --interpolate, --out must be a .png file, got {out_path}")
        check_output_file(out_path)
        m = load_model(model, device)
        a, b = (read_image(p, m.image_shape[0]) for p in interpolate)
        grid = interp(m, a, b, steps)
        save_png(grid, out_path, nrow=steps)
        doc = {"interpolation": str(out_path), "steps": steps, "images": [str(p) for p in interpolate]}
        print_json(doc) if json_ else err.print(f"wrote {out_path}", highlight=False)
        return
    if dataset is None:
        raise UsageError("pass --dataset DS (a labelled data set to augment) or --interpolate A.png B.png")
    if mode not in MODES:
        raise UsageError(f"unknown --mode {mode!r}; choose one of {', '.join(MODES)}")
    if n < 1:
        raise UsageError(f"--n must be >= 1, got {n}")
    check_new_output(out_path)
    m = load_model(model, device)
    with rich_progress() as prog:
        manifest = augment_folder(m, dataset, n, out_path, mode, strength, seed, model, data_root,
                                  progress_task(prog, f"latent {mode} of {dataset}"))
    if json_:
        print_json(manifest)
        return
    err.print(f"wrote {out_path}/ ({n} PNGs, manifest.json)", highlight=False)


def inpaint_cmd(model: str = typer.Option(..., "--model", "-m", help="any model"),
                image: Path = typer.Option(..., "--image", "-i", help="the image (PNG, ...)"),
                mask: Optional[Path] = typer.Option(None, "--mask", help="mask image: white is filled, black kept"),
                box: Optional[str] = typer.Option(None, "--box", help="x0,y0,x1,y1: fill this box (x1, y1 excluded)"),
                out_path: Path = typer.Option(..., "--out", "-o", help="output PNG"),
                seed: int = seed_option(),
                label: Optional[int] = typer.Option(None, "--label", min=0, max=2 ** 31 - 1,
                                                    help="class (class-conditional flows)"),
                sets: List[str] = typer.Option([], "--set", help="method options, e.g. --set iters=500 "
                                               "--set langevin=50 (flows) or --set steps=100 (diffusion)"),
                device: Optional[str] = typer.Option(None, "--device"),
                json_: bool = typer.Option(False, "--json")):
    """Fill the masked pixels of an image under a model's prior; the other pixels come back unchanged."""
    import torch

    from nfzoo.errors import UsageError

    from .images import read_image, read_mask, save_single
    from .inpainting import METHODS, box_mask, check_options, inpaint, is_diffusion, parse_box

    if (mask is None) == (box is None):
        raise UsageError("pass exactly one of --mask M.png and --box x0,y0,x1,y1")
    check_output_file(out_path)          # before any work: a .png in a folder we can write to
    options = parse_sets(sets)
    bx = parse_box(box) if box is not None else None
    m = load_model(model, device)
    if label is not None and m.num_classes is None:
        raise UsageError(f"{model} is unconditional: --label needs a class-conditional model (drop --label)")
    if label is not None and not 0 <= label < m.num_classes:
        raise UsageError(f"--label must be in [0, {m.num_classes - 1}], got {label}")
    method = options.get("method", "auto")
    if method not in METHODS:
        raise UsageError(f"unknown inpainting method {method!r}; choose one of {', '.join(METHODS)}")
    # the --set values are checked (types, ranges) before any image is read or work is done
    check_options("repaint" if method == "repaint" or (method == "auto" and is_diffusion(m)) else "latent",
                  {k: v for k, v in options.items() if k != "method"})
    x = read_image(image, m.image_shape[0])
    if tuple(x.shape) != tuple(m.image_shape):
        raise UsageError(f"{image} is {x.shape[2]}x{x.shape[1]} with {x.shape[0]} channel(s) but {model} "
                         f"takes {m.image_shape[2]}x{m.image_shape[1]} with {m.image_shape[0]}")
    if mask is not None:
        mk = read_mask(mask, x.shape)
    else:
        assert bx is not None   # exactly one of --mask and --box (checked above)
        mk = box_mask(x.shape, bx)
    y = None if label is None else torch.tensor([label])
    gen = torch.Generator().manual_seed(seed)
    with rich_progress() as prog:
        filled = inpaint(m, x.unsqueeze(0), mk, gen, y=y, progress=progress_task(prog, "inpainting"), **options)
    save_single(filled[0], out_path)
    doc = {"image": str(image), "out": str(out_path), "filled_pixels": int(mk.sum()), "seed": seed}
    print_json(doc) if json_ else err.print(f"wrote {out_path} ({doc['filled_pixels']} pixels filled)",
                                            highlight=False)


def score_cmd(model: str = typer.Option(..., "--model", "-m", help="any model"),
              images: Path = typer.Option(..., "--images", help="a folder of images (searched recursively)"),
              reference: Optional[str] = typer.Option(None, "--reference", help="data set whose training split "
                                                      "gives the typicality reference [the model's own]"),
              repeats: Optional[int] = typer.Option(None, "--repeats", min=1, max=1000,
                                                    help="average this many bpd estimates "
                                                    "per image [1; 8 for diffusion models, whose bpd is a "
                                                    "one-sample estimate of a bound]"),
              seed: int = seed_option(),
              data_root: Optional[str] = typer.Option(None, "--data-root"),
              device: Optional[str] = typer.Option(None, "--device"),
              json_: bool = typer.Option(False, "--json", help="print one JSON record per file")):
    """Per-image bits per dimension and typicality (|bpd - the training split's mean bpd|): higher is more
    anomalous for both."""
    import torch

    from nfzoo.errors import UsageError

    from .images import list_images, read_image
    from .scoring import score, typicality_reference

    files = list_images(images)
    m = load_model(model, device)
    xs = []
    for f in files:                    # every file is read (and checked) before any scoring
        x = read_image(f, m.image_shape[0])
        if tuple(x.shape) != tuple(m.image_shape):
            raise UsageError(f"{f} is {x.shape[2]}x{x.shape[1]} with {x.shape[0]} channel(s) but {model} "
                             f"takes {m.image_shape[2]}x{m.image_shape[1]} with {m.image_shape[0]}")
        xs.append(x)
    ref_ds = reference or _model_dataset(model)
    with rich_progress() as prog:
        ref = typicality_reference(m, ref_ds, data_root, seed, progress_task(prog, f"bpd of {ref_ds}/train"),
                                   repeats)
        recs = score(m, torch.stack(xs), ref["mean_bpd"], seed, progress_task(prog, f"bpd of {len(files)} images"),
                     repeats)
    recs = [{"path": str(f), **r} for f, r in zip(files, recs)]
    if json_:
        for r in recs:
            typer.echo(json.dumps(r))
        return
    from rich.table import Table

    table = Table(title=f"{model}: typicality reference {ref['mean_bpd']:.4f} bpd ({ref_ds}/train)",
                  title_justify="left")
    for c in ("path", "bpd", "typicality"):
        table.add_column(c)
    for r in recs:
        table.add_row(r["path"], f"{r['bpd']:.4f}", f"{r['typicality']:.4f}")
    out.print(table)


def _model_dataset(model: str) -> str:
    from nfzoo.errors import UsageError

    try:
        from nfzoo.loading.api import resolve_pretrained

        ds = resolve_pretrained(model).metadata.get("dataset")
    except Exception:
        ds = None
    if not ds:
        raise UsageError(f"cannot tell which data set {model} was trained on: pass --reference DS (its "
                         "training data set, e.g. mnist5k)")
    return ds


def add_commands(app: typer.Typer) -> None:
    """The app maps their errors to exit codes (nfzoo_cli.exits): no decorator needed here."""
    app.command("synth")(synth_cmd)
    app.command("augment")(augment_cmd)
    app.command("inpaint")(inpaint_cmd)
    app.command("score")(score_cmd)
