"""The documentation site's generated pages (mkdocs, `docs_dir: docs/pages`; issue 37), rendered with README.md
and the cards when the tree has a docs/pages folder:

- page documents: every Markdown page under docs/pages that is not generated whole (docs/pages/zoo/index.md,
  docs/pages/results/*.md, and any other page that marks a block) has its generated blocks rendered in place,
  as README.md has; blocks write links from the repository root, and on a page `site_links` turns them into
  links from the page (a file of docs/pages), links to a copy (a picture or Markdown file of docs/results) or,
  for anything else outside docs_dir, its repository path in code (`mkdocs build --strict` fails on a link
  out of docs_dir);
- one page per zoo model, docs/pages/zoo/MODEL.md, generated whole from its rendered card
  (zoo/nfzoo_zoo/models/MODEL/README.md): the card without its YAML front matter and block markers, its
  training curve (docs/results/MODEL-curve.png) when there is one, and a line back to the zoo's page;
- copies: docs/pages/results/files/REL is a copy of docs/results/REL, for every such path a page links to
  (pictures byte for byte; a Markdown file with its links out of docs_dir put in code). A copy no page links
  to, and a model page without its card, is removed.

A generated page starts with GENERATED_PAGE, naming its source; `--check` fails on a stale or missing page or
copy as on a stale block."""
from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple, Union

from .results import RESULTS, TOOL, RenderError

PAGES = "docs/pages"                              # mkdocs' docs_dir
ZOO_PAGES = f"{PAGES}/zoo"
RESULTS_PAGES = f"{PAGES}/results"
FILES = f"{RESULTS_PAGES}/files"                  # copies of docs/results files the pages link to
GENERATED_PAGE = "<!-- nfzoo:page {source} ({tool}; do not edit: generated whole) -->"
GENERATED_RE = re.compile(r"\A<!-- nfzoo:page (?P<source>\S+) \(zoo/tools/render_docs\.py; do not edit: "
                          r"generated whole\) -->\n")
LINK = re.compile(r"(?P<bang>!?)\[(?P<text>[^\]\n]*)\]\((?P<target>[^)\s]+)\)")
COPYABLE = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".md")
MARKER_LINE = re.compile(r"^<!-- nfzoo:(?:generated [\w.:+-]+ \(zoo/tools/render_docs\.py; do not edit\)|end) -->\n",
                         re.M)
CODE = re.compile(r"(^```.*?^```|`[^`\n]*`)", re.S | re.M)     # fenced code and code spans: no links in them
FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)

Content = Union[str, bytes]


def has_site(root: Path) -> bool:
    """Whether the tree has the documentation site (a docs/pages folder): without one there is nothing to
    render (a copy of the tree made for a test of the cards)."""
    return (Path(root) / PAGES).is_dir()


def is_generated(text: str) -> bool:
    """Whether a page is generated whole (it starts with GENERATED_PAGE)."""
    return bool(GENERATED_RE.match(text))


def page_documents(root: Path) -> List[Path]:
    """The pages rendered in place: every .md under docs/pages except the generated ones and the copies."""
    root = Path(root)
    out = []
    for path in sorted((root / PAGES).rglob("*.md")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(FILES + "/") or is_generated(path.read_text()):
            continue
        out.append(path)
    return out


def _external(target: str) -> bool:
    return target.startswith(("#", "/", "mailto:")) or "://" in target


def site_links(root: Path, text: str, page: str, base: str = "", copies: bool = True) -> str:
    """The text's relative links (and pictures), written relative to `base` (a folder of the repository; ""
    is its root), as links from `page` (a file under docs/pages): a file of docs/pages is linked where it is;
    with `copies`, a picture or Markdown file of docs/results is linked as its copy under FILES; anything else
    becomes its repository path in code."""
    here = posixpath.dirname(page)

    def fix(m: re.Match) -> str:
        target = m.group("target")
        if _external(target):
            return m.group(0)
        path, hashmark, fragment = target.partition("#")
        rel = posixpath.normpath(posixpath.join(base, path))
        if rel.startswith(PAGES + "/"):
            new = rel
        elif (copies and rel.startswith(RESULTS + "/") and rel.lower().endswith(COPYABLE)
              and (Path(root) / rel).is_file()):
            new = f"{FILES}/{rel[len(RESULTS) + 1:]}"
        else:
            return f"{m.group('text')} (`{rel}`)" if m.group("text") else f"`{rel}`"
        return f"{m.group('bang')}[{m.group('text')}]({posixpath.relpath(new, here)}{hashmark}{fragment})"
    return "".join(part if i % 2 else LINK.sub(fix, part) for i, part in enumerate(CODE.split(text)))


def linked_files(text: str, page: str) -> Set[str]:
    """The paths under docs/pages that a page's relative links name (from the repository root)."""
    here = posixpath.dirname(page)
    out = set()
    for m in LINK.finditer(_strip_code(text)):
        target = m.group("target")
        if not _external(target):
            out.add(posixpath.normpath(posixpath.join(here, target.partition("#")[0])))
    return out


def _strip_code(text: str) -> str:
    """The text without its fenced code blocks and code spans (a link inside code is not a link)."""
    return "".join(CODE.split(text)[::2])


def model_page(root: Path, name: str, card: str) -> str:
    """docs/pages/zoo/NAME.md from the model's rendered card."""
    source = f"zoo/nfzoo_zoo/models/{name}/README.md"
    page = f"{ZOO_PAGES}/{name}.md"
    body = MARKER_LINE.sub("", FRONT_MATTER.sub("", card, count=1)).strip("\n")
    body = site_links(root, body, page, base=posixpath.dirname(source))
    curve = f"{RESULTS}/{name}-curve.png"
    extra = []
    if (Path(root) / curve).is_file():
        extra += ["## Training curve", "", f"![train and test bpd per epoch of {name}]({curve})", "",
                  f"Written by `nfzoo train` (`{curve}`).", ""]
    tail = site_links(root, "\n".join(extra), page)
    return (GENERATED_PAGE.format(source=source, tool=TOOL) + "\n\n" + body + "\n\n" + tail
            + f"This page is the model card `{source}`, rendered by `{TOOL}`; [the zoo](index.md) has every model.\n")


def _copy(root: Path, rel: str) -> Content:
    """The content of the copy FILES/REL: docs/results/REL's bytes, or its text with links put in code."""
    src = Path(root) / RESULTS / rel
    if not src.is_file():
        raise RenderError(f"a page links to {FILES}/{rel}, a copy of {RESULTS}/{rel}, which is missing")
    if src.suffix.lower() != ".md":
        return src.read_bytes()
    return site_links(root, src.read_text(), f"{FILES}/{rel}", base=posixpath.dirname(f"{RESULTS}/{rel}"),
                      copies=False)


def generated(root: Path, pages: Dict[str, str], cards: Dict[str, str]) -> Tuple[Dict[str, Content], List[str]]:
    """The generated files of the site: ({path: content} of the model pages and copies, [paths to remove]).
    `pages`: {path: rendered text} of the page documents; `cards`: {model: rendered card}."""
    root = Path(root)
    out: Dict[str, Content] = {f"{ZOO_PAGES}/{name}.md": model_page(root, name, card) for name, card in cards.items()}
    wanted: Set[str] = set()
    for page, text in list(pages.items()) + [(p, t) for p, t in out.items() if isinstance(t, str)]:
        wanted |= {p for p in linked_files(text, page) if p.startswith(FILES + "/")}
    for rel in sorted(wanted):
        out[rel] = _copy(root, rel[len(FILES) + 1:])
    stale = [p.relative_to(root).as_posix() for p in sorted((root / FILES).rglob("*")) if p.is_file()]
    stale += [p.relative_to(root).as_posix() for p in sorted((root / ZOO_PAGES).glob("*.md"))
              if is_generated(p.read_text())]
    return out, [p for p in stale if p not in out]


def broken_links(root: Path, pages: Iterable[Tuple[str, str]]) -> List[str]:
    """The relative links of pages (path, text) that do not name a file under docs/pages (what
    `mkdocs build --strict` would refuse), as "PAGE: TARGET"."""
    bad = []
    for page, text in pages:
        for target in sorted(linked_files(text, page)):
            if not target.startswith(PAGES + "/") or not (Path(root) / target).is_file():
                bad.append(f"{page}: {target}")
    return bad


def old_content(root: Path, rel: str, new: Content) -> Optional[Content]:
    """What the tree holds at `rel` now, as text or bytes like `new` (None: no such file)."""
    path = Path(root) / rel
    if not path.is_file():
        return None
    return path.read_bytes() if isinstance(new, bytes) else path.read_text()
