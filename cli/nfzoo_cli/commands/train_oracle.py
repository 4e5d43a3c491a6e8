"""`nfzoo train-oracle`: the classifier whose features the sample metrics of `nfzoo eval` use."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..toolkit import MAX_BATCH, MAX_EPOCHS, check_run_dir, err, finite, print_json, rich_progress, run_dir, seed_option


def train_oracle_cmd(dataset: str = typer.Option("mnist5k", "--dataset", "-d", help="labelled data set "
                                                 "(its fixed train split; accuracy on its test split)"),
                     out_dir: Optional[Path] = typer.Option(None, "--out", help="oracle directory "
                                                            "[default: runs/oracle-DATASET]"),
                     epochs: int = typer.Option(20, "--epochs", min=1, max=MAX_EPOCHS, help="epochs"),
                     batch_size: int = typer.Option(64, "--batch-size", min=1, max=MAX_BATCH),
                     lr: float = typer.Option(3e-3, "--lr", callback=finite(above=0),
                                              help="peak learning rate (one-cycle)"),
                     seed: int = seed_option(),
                     data_root: Optional[str] = typer.Option(None, "--data-root"),
                     json_: bool = typer.Option(False, "--json", help="print the result document as JSON")):
    """Train the oracle CNN whose features `nfzoo eval --samples` uses for FID, Coverage and Density."""
    from nfzoo.evaluation.oracle import train_oracle

    if out_dir is None:
        out_dir = run_dir("oracle", dataset)
    check_run_dir(out_dir)
    with rich_progress(transient=False) as prog:
        bar = prog.add_task("oracle epoch 1", total=None)
        state = {"epoch": 1}

        def on_step(done, total):
            prog.update(bar, completed=done, total=total,
                        description=f"oracle epoch {state['epoch']}/{epochs}")

        def on_epoch(r):
            state["epoch"] = r["epoch"] + 1
            prog.console.print(f"epoch {r['epoch']}: loss {r['train_loss']:.4f}  train acc "
                               f"{r['train_accuracy']:.4f}  test acc {r['test_accuracy']:.4f}  "
                               f"({r['seconds']:.1f} s)", highlight=False)
        res = train_oracle(dataset, epochs=epochs, seed=seed, out=out_dir, batch_size=batch_size, lr=lr,
                           data_root=data_root, progress=on_epoch, step_progress=on_step)
    res.pop("oracle", None)
    if json_:
        print_json(res)
    else:
        err.print(f"[green]done[/]: {res['out']}  test accuracy {res['test_accuracy']:.4f} on "
                  f"{res['test_images']} images  ({res['seconds']:.0f} s)")


def register(app: typer.Typer) -> None:
    """Add `train-oracle` to `app`."""
    app.command("train-oracle")(train_oracle_cmd)
