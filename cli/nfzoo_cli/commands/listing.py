"""`nfzoo list`, `nfzoo info`, `nfzoo plugins`: what the registry holds. They import no torch."""
from __future__ import annotations

import json

import typer

from ..toolkit import err, out, print_json


def list_cmd(pattern: str = typer.Argument("*", help="fnmatch pattern, e.g. 'glow*'"),
             pretrained: bool = typer.Option(False, "--pretrained", help="list pretrained models"),
             datasets: bool = typer.Option(False, "--datasets", help="list data sets (built-in, folder:/hf: "
                                           "forms, plugins') with their shapes and splits"),
             json_: bool = typer.Option(False, "--json", help="print JSON")):
    """List architectures (or pretrained models, or data sets) matching PATTERN."""
    from nfzoo.registry.plugins import get_registry

    if datasets:
        return _list_datasets(pattern, pretrained, json_)

    kind = "pretrained" if pretrained else "architectures"
    entries = get_registry().list(kind, pattern)
    sources = {}
    if pretrained:  # embedded / cached / hub / unpublished: no torch, no network
        from nfzoo.hub.fetch import source_of

        sources = {e.name: source_of(e) for e in entries}
    if json_:
        print_json([dict(e.to_json(), **({"source": sources[e.name]} if pretrained else {}))
                    for e in entries])
        return
    from rich.table import Table

    table = Table(title="pretrained models" if pretrained else "architectures", title_justify="left")
    table.add_column("name", style="bold")
    if pretrained:
        table.add_column("architecture")
        table.add_column("dataset")
        table.add_column("source")
    table.add_column("plugin")
    table.add_column("description")
    for e in entries:
        row = [e.name]
        if pretrained:
            row += [str(e.metadata.get("architecture", "")), str(e.metadata.get("dataset", "")),
                    sources[e.name]]
        table.add_row(*row, e.plugin, e.description)
    out.print(table)
    if not entries:
        err.print(f"nothing matches {pattern!r}")


def _list_datasets(pattern: str, pretrained: bool, json_: bool) -> None:
    import fnmatch

    from nfzoo.data import dataset_catalog
    from nfzoo.errors import UsageError

    if pretrained:
        raise UsageError("--datasets and --pretrained each choose what to list: give one")
    rows = [r for r in dataset_catalog() if fnmatch.fnmatch(r["name"], pattern)]
    if json_:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="data sets", title_justify="left")
    for col in ("name", "kind", "shape", "classes", "splits", "plugin", "description"):
        table.add_column(col, style="bold" if col == "name" else None)
    for r in rows:
        shape = "x".join(map(str, r["shape"])) if isinstance(r["shape"], list) else str(r["shape"] or "")
        splits = ", ".join(r["splits"]) if isinstance(r["splits"], list) else str(r["splits"])
        table.add_row(r["name"], r["kind"], shape, str(r["classes"] if r["classes"] is not None else "-"), splits,
                      r["plugin"], r["description"])
    out.print(table)
    if not rows:
        err.print(f"nothing matches {pattern!r}")


def info_cmd(name: str = typer.Argument(..., help="an architecture, pretrained model, bijector, ..."),
             json_: bool = typer.Option(False, "--json", help="print JSON")):
    """Describe a registered name: its plugin, paper, and config keys with their defaults."""
    from nfzoo.errors import UnknownNameError
    from nfzoo.registry.inspection import signature_defaults
    from nfzoo.registry.plugins import KINDS, get_registry

    reg = get_registry()
    found = [reg.registry(k)[name] for k in KINDS if name in reg.registry(k)]
    if not found:
        every = {n for k in KINDS for n in reg.registry(k)}
        raise UnknownNameError("name", name, every, hint="See `nfzoo list` and `nfzoo list --pretrained`.")
    docs = []
    for e in found:
        doc = e.to_json()
        if e.kind in ("architectures", "bijectors", "priors", "samplers", "eval_tasks"):
            defaults = signature_defaults(e.target)
            if defaults is not None:
                doc["config" if e.kind == "architectures" else "arguments"] = defaults
        if e.kind == "pretrained":
            from nfzoo.hub.fetch import source_of
            from nfzoo.loading.pretrained import embedded_sampling

            doc["source"] = source_of(e)
            sampling = embedded_sampling(e)
            if sampling:      # the default sampler and temperature, chosen by measurement (and where)
                doc["default_sampling"] = sampling
        docs.append(doc)
    if json_:
        print_json(docs[0] if len(docs) == 1 else docs)
        return
    for doc in docs:
        out.print(f"[bold]{doc['name']}[/] ({doc['kind']}, plugin {doc['plugin']})")
        for k, v in doc.items():
            if k in ("name", "kind", "plugin"):
                continue
            if isinstance(v, dict):
                out.print(f"  {k}:")
                for kk, vv in v.items():
                    out.print(f"    {kk} = {json.dumps(vv)}", highlight=False)
            else:
                out.print(f"  {k}: {v}", highlight=False)


def plugins_cmd(json_: bool = typer.Option(False, "--json", help="print JSON")):
    """List the loaded plugins, their versions and hooks, and any plugin that failed to load."""
    from nfzoo.loading.api import list_plugins
    from nfzoo.registry.plugins import get_registry

    plugins = list_plugins()
    heads = get_registry().list("heads")
    tasks = get_registry().list("eval_tasks")
    for p in plugins:
        p["heads"] = [e.name for e in heads if e.plugin == p["name"]]
        p["eval_tasks"] = [e.name for e in tasks if e.plugin == p["name"]]
    if json_:
        print_json(plugins)
        return
    from rich.table import Table

    table = Table(title="plugins", title_justify="left")
    for col in ("name", "version", "hooks", "status"):
        table.add_column(col)
    for p in plugins:
        status = "[red]failed: " + p["error"].splitlines()[0] + "[/]" if p["error"] else (
            "built-in" if p["builtin"] else "ok")
        table.add_row(p["name"], p["version"] or "", ", ".join(p["hooks"]), status)
    out.print(table)
    if heads:
        table = Table(title="heads (application tools on any model)", title_justify="left")
        for col in ("name", "plugin", "command", "eval tasks", "description"):
            table.add_column(col)
        for e in heads:
            table.add_row(e.name, e.plugin, "nfzoo " + e.metadata["command"] if e.metadata.get("command") else "",
                          ", ".join(t.name for t in tasks if t.metadata.get("head") == e.name), e.description)
        out.print(table)
    loose = [t for t in tasks if t.metadata.get("head") not in {e.name for e in heads}]
    if loose:
        table = Table(title="eval tasks (nfzoo eval NAME --task TASK)", title_justify="left")
        for col in ("name", "plugin", "description"):
            table.add_column(col)
        for t in loose:
            table.add_row(t.name, t.plugin, t.description)
        out.print(table)


def register(app: typer.Typer) -> None:
    """Add `list`, `info` and `plugins` to `app`."""
    app.command("list")(list_cmd)
    app.command("info")(info_cmd)
    app.command("plugins")(plugins_cmd)
