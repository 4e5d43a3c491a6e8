"""`nfzoo export`: a model's sampler (and density) as ONNX graphs with a numpy + onnxruntime runner
(nfzoo.export.onnx), checked with onnxruntime against torch while it is written; `--format web`: the sampler as a
static site that samples in the browser with onnxruntime-web (nfzoo.export.web)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..toolkit import check_output_dir, err, fail, holds_files, load_model, no_nul, out, print_json, rich_progress

FORMATS = ("onnx", "web")
DIRECTIONS = ("sample", "density")


def export_cmd(model: str = typer.Argument(..., help="pretrained name, family name or model directory"),
               out_raw: str = typer.Option(..., "--out", "-o", help="a new or empty folder for the graphs, "
                                            "manifest.json and the runner (an export is written whole: there "
                                            "is no --overwrite; remove an old export first)"),
               fmt: str = typer.Option("onnx", "--format", help="onnx (the graphs and the numpy runner) or web (a "
                                       "static site sampling in the browser: index.html, app.js, the sample "
                                       "direction's graphs and onnxruntime-web, fetched once from npm)"),
               direction: Optional[List[str]] = typer.Option(
                   None, "--direction", help="sample (latent [+ label] -> image, and the prior's draw) or "
                   "density (image -> latent, log-det, log-density); repeatable [default: both, each as far "
                   "as the model's operations allow, the manifest saying why not for the rest]"),
               check: int = typer.Option(8, "--check", min=1, max=4096, help="items per graph run through "
                                         "onnxruntime and torch to compare them"),
               json_: bool = typer.Option(False, "--json", help="print the manifest as JSON")):
    """Export a model's sampling direction (and where its operations allow, its density direction) as ONNX
    graphs that run without torch: OUT/manifest.json says what each graph is, its inputs and outputs, the
    files' sha256, the parity with torch measured here (onnxruntime, CPU) and why anything was not
    exported; OUT/nfzoo_onnx_runner.py samples with numpy + onnxruntime only
    (`ExportedModel(OUT).sample(16, seed=0)`). With --format web, OUT is a static site (the sample direction):
    serve it with any static file server (`python -m http.server -d OUT`)."""
    from nfzoo.errors import UnknownNameError, UsageError

    if fmt not in FORMATS:
        raise UnknownNameError("export format", fmt, FORMATS)
    for d in direction or ():
        if d not in DIRECTIONS:
            raise UnknownNameError("export direction", d, DIRECTIONS)
    if fmt == "web" and any(d != "sample" for d in direction or ()):
        raise UsageError("--format web exports the sample direction only: drop --direction density")
    out_dir = export_folder(out_raw)             # before the model loads: a refused --out writes nothing anywhere
    m = load_model(model, "cpu")
    existed = out_dir.exists()
    check_output_dir(out_dir)
    from nfzoo.errors import NfzooError
    from nfzoo.export.onnx import export_model
    from nfzoo.export.web import export_web

    try:
        with rich_progress() as prog:
            task = prog.add_task("exporting", total=None)

            def progress(what: str, done: int, total: int) -> None:
                prog.update(task, completed=done, total=total, description=f"exporting {what}".strip())

            if fmt == "web":
                site = export_web(m, out_dir, name=model, check=check, progress=progress)
                manifest = site.pop("manifest")
            else:
                site = None
                manifest = export_model(m, out_dir, directions=direction or None, fmt=fmt, name=model, check=check,
                                        progress=progress)
    except NfzooError:
        if not existed and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()           # leave no empty folder behind a refused export
        raise
    if json_:
        print_json(manifest if site is None else {**site, "manifest": manifest})
        return
    _render(manifest, out_dir, web=site is not None)
    if site is not None:
        out.print(f"site: {out_dir} ({site['bytes'] / 1e6:.1f} MB, onnxruntime-web {site['ort_web']['version']})",
                  highlight=False)
        err.print(f"open it through a static file server: python -m http.server -d {out_dir} 8000, then "
                  "http://127.0.0.1:8000/", highlight=False, soft_wrap=True)


def export_folder(raw: str) -> Path:
    """--out, checked before anything is loaded or made: not empty (a str option, as `sample`'s: typer's Path
    would turn "" into "."), no NUL, not a file, and a new or empty folder. `export` has no --overwrite: an
    export folder is one whole (graphs a new manifest does not list would sit beside it), so a folder that
    holds files is refused with what to do instead. Exit 2 otherwise."""
    if not raw.strip():
        fail("--out is empty: give a new or empty folder for the export (e.g. --out exported/MODEL)")
    no_nul(raw, "--out")
    p = Path(raw)
    if p.exists() and not p.is_dir():
        fail(f"--out {raw} is a file, not a folder; choose a new or empty folder")
    if p.is_dir() and holds_files(p):
        fail(f"--out {raw} is a folder that already holds files: export into a new or empty folder, or remove "
             "the old export first (nothing was written)")
    return p


def _render(manifest: dict, out_dir: Path, web: bool = False) -> None:
    from rich.table import Table

    table = Table(title=f"{manifest['model']['name']} -> {out_dir} (ONNX opset {manifest['opset']})",
                  title_justify="left")
    for c in ("graph", "inputs", "outputs", "max |diff| vs torch"):
        table.add_column(c)
    for name, g in manifest["graphs"].items():
        diffs = ", ".join(f"{k} {v['max_abs_diff']:.2g}" for k, v in g["check"].items() if isinstance(v, dict))
        table.add_row(name, ", ".join(i["name"] for i in g["inputs"]), ", ".join(o["name"] for o in g["outputs"]),
                      f"{diffs} ({g['check']['items']} items)")
    out.print(table)
    for d, info in manifest["directions"].items():
        state = "exported" if info["complete"] else ("partly exported" if info["graphs"] else "not exported")
        out.print(f"{d}: {state}", highlight=False)
    for name, why in manifest["not_exported"].items():
        out.print(f"[bold]{name}[/] not exported: {why}", highlight=False)
    if web:
        return
    err.print(f"run it without torch: python -c \"from nfzoo_onnx_runner import ExportedModel; "
              f"print(ExportedModel('.').sample(4).shape)\" (in {out_dir})", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `export` to `app`."""
    app.command("export")(export_cmd)
