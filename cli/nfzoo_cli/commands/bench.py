"""`nfzoo bench`: the registered benchmarks, timings against a baseline measured in the same run."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from ..toolkit import err, out, parse_device, print_json


def bench_cmd(ctx: typer.Context, what: Optional[str] = typer.Argument(None, help="benchmark name (none: list them)"),
              quick: bool = typer.Option(False, "--quick", help="a short run (smoke test)"),
              device: str = typer.Option("cpu", "--device", help="cpu or cuda (benchmarks that take it)"),
              model: Optional[str] = typer.Option(None, "--model", help="the model to time, a pretrained name "
                                                  "or a model folder (benchmarks that take it, e.g. tarflow)"),
              json_: bool = typer.Option(False, "--json", help="print JSON"),
              out_file: Optional[Path] = typer.Option(None, "--out", help="also write the document to this .json "
                                                      "file with its measured_by record (command, date, commit, "
                                                      "threads, the machine's load average)")):
    """Run a benchmark: timings against a baseline measured in the same run, as ratios."""
    from nfzoo.registry.plugins import get_registry

    reg = get_registry()
    if what is None:
        entries = reg.list("benchmarks")
        if json_:
            print_json([e.to_json() for e in entries])
        else:
            for e in entries:
                out.print(f"[bold]{e.name}[/]  {e.description}")
        return
    fn = reg.get("benchmarks", what).load()
    if out_file is not None and out_file.suffix != ".json":
        from nfzoo.errors import UsageError

        raise UsageError(f"--out {out_file}: give a .json file for the bench document")
    import inspect

    from nfzoo.errors import UsageError

    kwargs = {}
    takes = inspect.signature(fn).parameters
    if device != "cpu":
        kwargs["device"] = parse_device(device)
        if "device" not in takes:
            raise UsageError(f"bench {what} runs on the CPU only: drop --device")
    if model is not None:
        if "model" not in takes:
            raise UsageError(f"bench {what} times its own fixed models: drop --model")
        if quick:
            raise UsageError("--quick times tiny random models: drop --model, or --quick")
        kwargs["model"] = model      # loaded first by the bench (nfzoo.load's checks: a bad name exits 2 at once)
    load_before = _load()
    doc = fn(quick=quick, log=lambda msg: err.print(msg, highlight=False), **kwargs)
    if out_file is not None:
        import shlex

        from nfzoo.evaluation.results import write_result

        from .ranks import command_argv

        doc = {**doc, "load_average": {"before": load_before, "after": _load()}}
        write_result(out_file, doc, shlex.join(["nfzoo", *command_argv(ctx, drop=("out_file", "json_"))]))
        err.print(f"wrote {out_file}", highlight=False)
    if json_:
        print_json(doc)
        return
    from rich.table import Table

    table = Table(title=f"bench {what} ({doc.get('device', '')})", title_justify="left")
    cols = ["case", "baseline", "candidate", "baseline_s", "candidate_s", "ratio"]
    for c in cols:
        table.add_column(c)
    for r in doc["rows"]:
        table.add_row(*[_fmt(r.get(c)) for c in cols])
    out.print(table)
    for r in doc["rows"]:  # the measurements beyond the ratio, one line per case
        extra = {k: v for k, v in r.items() if k not in cols}
        if extra:
            out.print(f"[bold]{r['case']}[/]: " + ", ".join(f"{k} {_fmt(v)}" for k, v in extra.items()),
                      highlight=False)
    for note in doc.get("notes", []):
        out.print(f"note: {note}", highlight=False)


def _load() -> Optional[list]:
    """The 1, 5 and 15 minute load averages (None where the OS has none): a timing on a busy machine says so."""
    import os

    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def register(app: typer.Typer) -> None:
    """Add `bench` to `app`."""
    app.command("bench")(bench_cmd)
