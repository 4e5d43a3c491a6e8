"""`nfzoo cache ls|verify|rm`: the Hugging Face cache entries of nfzoo models."""
from __future__ import annotations

from typing import Optional

import typer

from ..toolkit import err, fail, out, print_json

cache_app = typer.Typer(name="cache", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                        help="The Hugging Face cache entries of nfzoo models: ls, verify (sha256), rm.")


def _size(n: Optional[int]) -> str:
    if n is None:
        return ""
    size: float = n
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return str(size)


@cache_app.command("ls")
def cache_ls_cmd(name: Optional[str] = typer.Argument(None, help="a pretrained name or hf-hub:ORG/NAME"),
                 json_: bool = typer.Option(False, "--json", help="print JSON")):
    """List the cached revisions of nfzoo models."""
    from nfzoo.hub import cache
    from nfzoo.hub.settings import cache_dir

    rows = [cache.public(r) for r in cache.cache_list(name)]
    if json_:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title=f"nfzoo models in {cache_dir()}", title_justify="left")
    for col in ("name", "repo", "revision", "refs", "pinned", "files", "size"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["repo_id"], r["revision"][:10], ", ".join(r["refs"]),
                      "yes" if r["pinned"] else "", ", ".join(r["files"]), _size(r["size"]))
    out.print(table)
    if not rows:
        err.print("no nfzoo model is cached" + (f" for {name}" if name else ""))


@cache_app.command("verify")
def cache_verify_cmd(name: Optional[str] = typer.Argument(None, help="a pretrained name or hf-hub:ORG/NAME"),
                     json_: bool = typer.Option(False, "--json", help="print JSON")):
    """Recompute the sha256 of cached files and compare with the zoo index (exit 1 on a mismatch)."""
    from nfzoo.hub import cache

    docs = cache.cache_verify(name)
    bad = [(d, f, r) for d in docs for f, r in d["results"].items() if r["status"] in ("mismatch", "missing")]
    if json_:
        print_json(docs)
    else:
        for d in docs:
            mark = "[green]ok[/]" if d["ok"] else "[red]BAD[/]"
            out.print(f"{mark}  {d['name']}  {d['repo_id']}@{d['revision'][:10]}  "
                      + ", ".join(f"{f}: {r['status']}" for f, r in d["results"].items()), highlight=False)
        if not docs:
            err.print("no nfzoo model is cached" + (f" for {name}" if name else ""))
    if bad:
        names = sorted({d["name"] for d, _, _ in bad})
        files = ", ".join(f"{d['name']}/{f}" for d, f, _ in bad)
        fail(f"{len(bad)} cached file(s) do not match their sha256 ({files}): run `nfzoo pull {names[0]} "
             f"--force` (or `nfzoo cache rm {names[0]}`).", 1)


@cache_app.command("rm")
def cache_rm_cmd(name: Optional[str] = typer.Argument(None, help="a pretrained name or hf-hub:ORG/NAME"),
                 revision: Optional[str] = typer.Option(None, "--revision",
                                                        help="only this commit sha or ref"),
                 all_: bool = typer.Option(False, "--all", help="every cached nfzoo model"),
                 json_: bool = typer.Option(False, "--json", help="print JSON")):
    """Remove cached revisions of a model (or of every nfzoo model with --all)."""
    from nfzoo.hub import cache

    if (name is None) != all_:
        fail("give a model NAME (see `nfzoo cache ls`) or --all" if name is None else
             "give a model NAME or --all, not both")
    doc = cache.cache_remove(name, revision)
    if json_:
        print_json(doc)
        return
    for r in doc["removed"]:
        err.print(f"removed {r['name']} {r['repo_id']}@{r['revision'][:10]}", highlight=False)
    err.print(f"freed {_size(doc['freed'])}" if doc["removed"] else "nothing to remove")


def register(app: typer.Typer) -> None:
    """Add the `cache` group (ls, verify, rm) to `app`."""
    app.add_typer(cache_app, name="cache")
