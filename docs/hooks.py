"""mkdocs hooks of nfzoo's documentation site (mkdocs.yml `hooks:`), run by `make docs`.

- The snippet base (pymdownx.snippets) is the repository root, whatever the working directory: the
  architecture page and the changelog include ARCHITECTURE.md and CHANGELOG.md rather than copies.
- The CLI reference is generated from the `nfzoo` typer app as the console script builds it
  (`nfzoo_cli.app.build_app()`, so the installed plugins' commands are there too): in a page,
  `<!-- nfzoo:cli-commands -->` becomes a table of every command and the distribution that adds it, and
  `<!-- nfzoo:cli-reference -->` each command's help, usage and options, as `nfzoo COMMAND --help` prints
  them. (mkdocs-click cannot read them: the typer installed here, 0.29, vendors its own click, whose Option is
  not click's, so mkdocs-click lists no options.)
- Docstrings are prose (tests/test_docstrings.py), not Markdown: `ProseDocstrings`, a griffe extension
  (mkdocstrings' `extensions: [nfzoo_site_hooks:ProseDocstrings]`), escapes what Markdown would read as a
  reference link (`manifest["a"][b]`), so a docstring never makes a broken cross-reference.
- The gallery's screenshots (docs/gallery/*.png, written by the gallery's browser tests) are served as
  gallery/*.png, so pages show them without copies under docs/pages.
- The "Zoo" and "Results" entries of the nav, written as their folder's index.md, get the folder's other
  pages under them (in the order the index links to them, then by name; sub-folders stay out), so pages
  generated there appear in the navigation without editing mkdocs.yml.
"""
from __future__ import annotations

import html
import re
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import griffe

ROOT = Path(__file__).resolve().parent.parent
COMMANDS_MARKER = "<!-- nfzoo:cli-commands -->"
REFERENCE_MARKER = "<!-- nfzoo:cli-reference -->"
EXPANDED_SECTIONS = ("zoo/index.md", "results/index.md")
LINK = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")
CODE_SPAN = re.compile(r"(`+).*?\1")

sys.modules.setdefault("nfzoo_site_hooks", sys.modules[__name__])   # so that griffe finds ProseDocstrings


class ProseDocstrings(griffe.Extension):
    """Escape `][` outside code spans and indented blocks of every docstring: `x["a"][b]` stays text."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = "\n".join(map(_escape_line, obj.docstring.value.split("\n")))


def _escape_line(line: str) -> str:
    if line.startswith("    ") or "][" not in line:
        return line
    out, last = [], 0
    for span in CODE_SPAN.finditer(line):
        out += [line[last:span.start()].replace("][", "]\\["), span.group(0)]
        last = span.end()
    return "".join(out + [line[last:].replace("][", "]\\[")])


def on_config(config: Any) -> Any:
    """Snippets from the repo root; the zoo's and results' pages in the nav."""
    snippets: Dict[str, Any] = config["mdx_configs"].setdefault("pymdownx.snippets", {})
    snippets["base_path"] = [str(ROOT)]
    if config["nav"]:
        config["nav"] = [_expand(item, Path(config["docs_dir"])) for item in config["nav"]]
    return config


def on_files(files: Any, config: Any) -> Any:
    """docs/gallery/*.png as the site's gallery/*.png."""
    from mkdocs.structure.files import File

    for png in sorted((ROOT / "docs" / "gallery").glob("*.png")):
        uri = f"gallery/{png.name}"
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(png)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """The generated CLI reference where a page asks for it."""
    if COMMANDS_MARKER in markdown:
        markdown = markdown.replace(COMMANDS_MARKER, commands_table())
    if REFERENCE_MARKER in markdown:
        markdown = markdown.replace(REFERENCE_MARKER, cli_reference())
    return markdown


def cli_command() -> Any:
    """`nfzoo` as a (typer-vendored) click group, with the installed plugins' commands."""
    import typer.main

    from nfzoo_cli.app import build_app

    return typer.main.get_command(build_app())


def _commands(group: Any, ctx: Any) -> Iterator[Tuple[Any, Any]]:
    """(command, its context) for every visible command below `group`, depth first, in --help's order."""
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = command.make_context(name, [], parent=ctx, resilient_parsing=True)
        yield command, sub
        if hasattr(command, "list_commands"):
            yield from _commands(command, sub)


def _root() -> Tuple[Any, Any]:
    cli = cli_command()
    return cli, cli.make_context("nfzoo", [], resilient_parsing=True)


def _owner(command: Any) -> str:
    """The distribution that adds a command: nfzoo for the CLI's own, else the plugin's."""
    from importlib.metadata import packages_distributions

    package = (getattr(getattr(command, "callback", None), "__module__", None) or "nfzoo_cli").split(".")[0]
    return "nfzoo" if package == "nfzoo_cli" else ", ".join(packages_distributions().get(package, [package]))


def _anchor(ctx: Any) -> str:
    return ctx.command_path.replace(" ", "-")


def commands_table() -> str:
    """A Markdown table: each top-level command of `nfzoo`, what it does (its help's first sentence) and the
    distribution that adds it."""
    cli, root = _root()
    rows = ["| command | what it does | added by |", "| --- | --- | --- |"]
    for command, ctx in _commands(cli, root):
        if ctx.parent is root:
            summary = _paragraphs(command.help or "")[0].split(". ")[0].rstrip(".")
            rows.append(f"| [`{ctx.command_path}`](#{_anchor(ctx)}) | {_text(summary)} | {_owner(command)} |")
    return "\n".join(rows)


def cli_reference() -> str:
    """Every command: a heading, its help, the distribution that adds it, usage, arguments and options."""
    cli, root = _root()
    out: List[str] = []
    for command, ctx in _commands(cli, root):
        level = "#" * (1 + len(ctx.command_path.split()))
        out += [f"{level} {ctx.command_path} {{ #{_anchor(ctx)} }}", ""]
        out += [p for para in _paragraphs(command.help or "") for p in (_text(para), "")]
        owner = _owner(command)
        if owner != "nfzoo":
            out += [f"Added by the plugin **{owner}**.", ""]
        out += ["```text", command.get_usage(ctx), "```", ""]
        rows = [param.get_help_record(ctx) for param in command.get_params(ctx)]
        rows = [r for r in rows if r and not r[0].startswith("--help")]
        if hasattr(command, "list_commands"):
            subs = [c for c, sub in _commands(command, ctx) if sub.parent is ctx]
            out += ["Commands: " + ", ".join(f"[`{c.name}`](#{_anchor(ctx)}-{c.name})" for c in subs) + ".", ""]
        if rows:
            out += ["| argument / option | meaning |", "| --- | --- |"]
            out += [f"| `{name}` | {_text(meaning)} |" for name, meaning in rows]
            out.append("")
    return "\n".join(out)


def _paragraphs(text: str) -> List[str]:
    """Help text as paragraphs (click's \\b markers dropped), each on one line."""
    paras = [" ".join(line.strip() for line in p.splitlines() if line.strip() != "\b")
             for p in re.split(r"\n\s*\n", text.strip())]
    return [p for p in paras if p] or [""]


def _text(text: str) -> str:
    """Plain help text as Markdown: code spans kept, everything else literal."""
    out, last = [], 0
    for span in CODE_SPAN.finditer(text):
        out += [_escape(text[last:span.start()]), span.group(0)]
        last = span.end()
    return "".join(out + [_escape(text[last:])])


def _escape(text: str) -> str:
    text = html.escape(text, quote=False)
    return re.sub(r"([\\*_\[\]|#])", r"\\\1", text)


def _expand(item: Any, docs_dir: Path) -> Any:
    """A nav entry `{title: "zoo/index.md"}` with the folder's other pages added under it."""
    if not isinstance(item, dict) or len(item) != 1:
        return item
    (title, value), = item.items()
    if isinstance(value, list):
        return {title: [_expand(sub, docs_dir) for sub in value]}
    if value not in EXPANDED_SECTIONS:
        return item
    index = docs_dir / value
    others = _section_pages(index, docs_dir)
    return {title: [value, *others]} if others else item


def _section_pages(index: Path, docs_dir: Path) -> List[str]:
    """The Markdown pages of index's folder, other than index itself, as docs_dir-relative paths: first those
    the index links to, in its order, then the rest by name. Pages in sub-folders stay out of the nav (the
    pages that link to them are in it)."""
    folder = index.parent
    if not index.is_file():
        return []
    pages = sorted(p.relative_to(docs_dir).as_posix() for p in folder.glob("*.md") if p != index)
    linked: List[str] = []
    for target in LINK.findall(index.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        path = (folder / target).resolve()
        try:
            rel = path.relative_to(docs_dir.resolve()).as_posix()
        except ValueError:
            continue
        if rel in pages and rel not in linked:
            linked.append(rel)
    return linked + [p for p in pages if p not in linked]
