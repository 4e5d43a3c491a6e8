"""`nfzoo refit-prior`: replace a trained unconditional flow's N(0, I) prior by a mixture of gaussians fitted
to its training latents (nfzoo.flows.latent_prior), and write the new model folder."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer

from ..toolkit import (
    check_output_dir,
    load_model,
    out,
    parse_device,
    print_json,
    progress_task,
    rich_progress,
    seed_option,
)
from .ranks import command_argv

BY = ("labels", "single")


def refit_prior_cmd(ctx: typer.Context,
                    model: str = typer.Argument(..., help="pretrained name or model directory (unconditional)"),
                    dataset: str = typer.Option(..., "--dataset", "-d", help="the data set it was trained on "
                                                "(its train split is encoded)"),
                    out_dir: Path = typer.Option(..., "--out", help="a new folder for the refitted model"),
                    rank: int = typer.Option(64, "--rank", min=0, max=1 << 20, help="rank of each component's "
                                             "covariance (plus a diagonal)"),
                    by: str = typer.Option("labels", "--by", help="labels: one component per class of the "
                                           "data set; single: one for all"),
                    seed: int = seed_option(0, "seed of the dequantization noise of the encoded images"),
                    data_root: Optional[str] = typer.Option(None, "--data-root"),
                    device: Optional[str] = typer.Option(None, "--device"),
                    json_: bool = typer.Option(False, "--json", help="print the result as JSON")):
    """Fit a mixture of low-rank gaussians to the latents of the training images and make it the model's
    prior: samples then land where the flow's inverse was trained (the likelihood stays exact, under the
    new prior). Writes OUT (config.json, model.safetensors) and OUT/refit.json with the test bpd before
    and after."""
    from nfzoo.data import load_dataset
    from nfzoo.errors import UnknownNameError, UsageError
    from nfzoo.evaluation.results import write_result
    from nfzoo.flows.latent_prior import refit_model

    if by not in BY:
        raise UnknownNameError("--by", by, BY)
    dev = parse_device(device)
    m = load_model(model, dev)
    if m.num_classes is not None:     # refused before the output folder is made
        raise UsageError(f"{model} is class-conditional: a fitted latent prior is for unconditional models "
                         "(GLEM models have --sampler rfcm)")
    load_dataset(dataset, "train", data_root)     # a bad data set is refused before the folder is made
    check_output_dir(out_dir)
    with rich_progress() as prog:
        fit = refit_model(m, dataset, rank=rank, by=by, seed=seed, data_root=data_root,
                          progress=lambda what, total: progress_task(prog, what, total=total))
    before, after = fit["test_bpd_before"], fit["test_bpd_after"]
    m.save_pretrained(out_dir)
    doc = {"model": model, **fit}
    write_result(out_dir / "refit.json", doc, shlex.join(["nfzoo", *command_argv(ctx, drop=("json_",))]))
    if json_:
        print_json(doc)
        return
    out.print(f"{model}: latent prior fitted ({fit['components']} component(s), rank {fit['rank']}, "
              f"{fit['images']} images); test bpd {before:.4f} -> {after:.4f}; wrote {out_dir}",
              highlight=False)


def register(app: typer.Typer) -> None:
    """Add `refit-prior` to `app`."""
    app.command("refit-prior")(refit_prior_cmd)
