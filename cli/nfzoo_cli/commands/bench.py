"""`nfzoo bench`: the registered benchmarks, timings against a baseline measured in the same run."""
from __future__ import annotations

from typing import Any, Optional

import typer

from ..toolkit import err, out, parse_device, print_json


def bench_cmd(what: Optional[str] = typer.Argument(None, help="benchmark name (none: list them)"),
              quick: bool = typer.Option(False, "--quick", help="a short run (smoke test)"),
              device: str = typer.Option("cpu", "--device", help="cpu or cuda (benchmarks that take it)"),
              json_: bool = typer.Option(False, "--json", help="print JSON")):
    """Run a benchmark: timings against a baseline measured in the same run, as ratios."""
    from nfzoo.plugins import get_registry

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
    kwargs = {}
    if device != "cpu":
        import inspect

        from nfzoo.errors import UsageError

        kwargs["device"] = parse_device(device)
        if "device" not in inspect.signature(fn).parameters:
            raise UsageError(f"bench {what} runs on the CPU only: drop --device")
    doc = fn(quick=quick, log=lambda msg: err.print(msg, highlight=False), **kwargs)
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


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def register(app: typer.Typer) -> None:
    """Add `bench` to `app`."""
    app.command("bench")(bench_cmd)
