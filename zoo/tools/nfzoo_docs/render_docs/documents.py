"""The documents: README.md, the zoo's cards and the documentation site's pages (their generated blocks; site.py:
the pages generated whole and the copies they link to), zoo/nfzoo_zoo/index.json (its entries' metrics,
descriptions and card pins) and docs/results/zoo.csv, rendered all or nothing."""
from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import re
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Tuple

from nfzoo.constants import CARD_NAME
from nfzoo.safeio import atomic_write_bytes, atomic_write_json

from .. import REPO
from . import site
from .chain import bound_doc, bpd_cell, exact_bpd, history_rel, is_bound
from .knowledge import in_order
from .metrics import describe, model_index, model_metrics
from .registry import render_block
from .results import MD_BLOCK, RESULTS, YAML_BLOCK, Results, num, rel_results
from .samples import accuracy_file, sample_summary, sampling_default

ROOT = REPO


@lru_cache(maxsize=None)
def update_index() -> ModuleType:
    """zoo/tools/update_index.py, the index tool beside this package (a script, not a module on the path),
    loaded once by its path: its pin_files is the one definition of a zoo entry's sha256 pins."""
    spec = importlib.util.spec_from_file_location("nfzoo_docs.update_index",
                                                  Path(__file__).resolve().parents[2] / "update_index.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render_text(res: Results, text: str, where: str, index: Dict[str, Any]) -> str:
    """The text with every generated block rendered again (on a page of the site, `where` under docs/pages, with
the blocks' links made the page's: site.site_links)."""
    def md(m: re.Match) -> str:
        body = "\n".join(render_block(res, m.group("id"), where, index))
        if where.startswith(site.PAGES + "/"):
            body = site.site_links(res.root, body, where)
        return m.group(1) + "\n" + body + "\n\n" + m.group(4)

    def yaml(m: re.Match) -> str:
        return m.group(1) + "\n".join(model_index(res, m.group("id").split(":", 1)[1], index)) + "\n" + m.group(4)
    return YAML_BLOCK.sub(yaml, MD_BLOCK.sub(md, text))


def _diff(old: str, new: str, path: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{path}", f"b/{path}"))


def render(root: Path = ROOT, write: bool = True) -> Tuple[List[str], List[str]]:
    """Render README.md, the zoo cards, the index's metrics and (when the tree has docs/pages) the site's pages
    under `root` from its docs/results. With write=True the files that differ are rewritten (cards first, then
    their pins, then the pages and copies; stale generated pages and copies removed); with write=False nothing
    is written. All or nothing: every text and the index are rendered before anything is written, so a
    RenderError leaves every file as it was (a card rewritten without its pin would not load). Returns
    (unified diffs of what differed, warnings)."""
    root = Path(root)
    res = Results(root)
    index_path = root / "zoo" / "nfzoo_zoo" / "index.json"
    index_doc = json.loads(index_path.read_text())
    diffs: List[str] = []
    cards = sorted((root / "zoo" / "nfzoo_zoo" / "models").glob(f"*/{CARD_NAME}"))
    pages = site.page_documents(root) if site.has_site(root) else []
    new_index = json.loads(json.dumps(index_doc))
    for name, entry in new_index.get("models", {}).items():
        entry["metrics"] = model_metrics(res, name, entry)
        entry["description"] = describe(entry.get("description"), entry["metrics"])
    rendered, texts = {}, {}
    for path in [root / "README.md"] + cards + pages:     # with the index's new metrics and descriptions
        old = path.read_text()
        new = texts[path] = render_text(res, old, path.relative_to(root).as_posix(), new_index.get("models", {}))
        if new != old:
            diffs.append(_diff(old, new, path.relative_to(root).as_posix()))
            rendered[path] = new
    if write:
        for path, new in rendered.items():
            atomic_write_bytes(path, new.encode())
    for name, entry in new_index.get("models", {}).items():
        folder = root / "zoo" / "nfzoo_zoo" / "models" / name
        if (folder / CARD_NAME).is_file():
            if write or folder / CARD_NAME not in rendered:
                entry["files"] = update_index().pin_files(folder, entry.get("files"), names=(CARD_NAME,))
            else:     # check mode: the pin the rewritten card would get
                entry["files"] = {**(entry.get("files") or {}),
                                  CARD_NAME: hashlib.sha256(rendered[folder / CARD_NAME].encode()).hexdigest()}
    if new_index != index_doc:
        diffs.append(_diff(json.dumps(index_doc, indent=2) + "\n", json.dumps(new_index, indent=2) + "\n",
                           "zoo/nfzoo_zoo/index.json"))
        if write:
            atomic_write_json(index_path, new_index)
    if site.has_site(root):
        diffs += _site(root, {p.relative_to(root).as_posix(): texts[p] for p in pages},
                       {p.parent.name: texts[p] for p in cards}, write)
    return diffs, res.warnings


def _site(root: Path, pages: Dict[str, str], cards: Dict[str, str], write: bool) -> List[str]:
    """The site's generated pages and copies (site.generated; rendered before anything of the site is
    written): the diffs of those that differ, are missing or are stale, and with `write` the files
    rewritten or removed."""
    files, stale = site.generated(root, pages, cards)
    diffs, changed = [], {}
    for rel, new in files.items():
        old = site.old_content(root, rel, new)
        if old == new:
            continue
        changed[rel] = new
        diffs.append(f"Binary files a/{rel} and b/{rel} differ\n" if isinstance(new, bytes)
                     else _diff(old or "", new, rel))
    for rel in stale:
        diffs.append(f"{rel}: generated, but nothing generates it any more (removed when rendered)\n")
    if write:
        for rel, new in changed.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(root / rel, new if isinstance(new, bytes) else new.encode())
        for rel in stale:
            (root / rel).unlink()
    return diffs


ZOO_CSV = f"{RESULTS}/zoo.csv"


ZOO_CSV_COLUMNS = ("model", "kind", "architecture", "dataset", "status", "params", "test_bpd", "test_bpd_as_in_readme",
                   "default_sampler", "default_options", "default_temperature", "fid_mean", "fid_sd",
                   "recognisable_mean", "samples_per_seed", "seeds", "test_accuracy", "sources")


def zoo_csv(res: Results, index: Dict[str, Any]) -> str:
    """docs/results/zoo.csv: the whole zoo in one table (as timm's results/ csvs), one row per index entry in
    the README's order, each number from the files the README's tables render from: the test bpd of the
    shipped weights (`shipped`; a diffusion model's bound as the mean over seeds, `bound_doc`) with the README's
    cell beside it (`bpd_cell`), the default sampling setting (`sampling_default`: config.json "sampling")
    and its sample-quality file's FID (mean, sd over seeds) and recognisable share (`sample_summary`),
    samples per seed and seeds, an oracle's test accuracy; params when index.json records them ("params");
    sources: the files, ";"-separated. An empty cell: no such number (no file, no number)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(ZOO_CSV_COLUMNS)
    for name in in_order(index):
        e = index[name]
        kind = e.get("kind", "flow")
        row = dict.fromkeys(ZOO_CSV_COLUMNS, "")
        row.update(model=name, kind=kind, architecture=e.get("architecture", ""), dataset=e.get("dataset", ""),
                   status=e.get("status", ""), params=e.get("params", ""))
        rels: List[str] = []
        if kind == "flow" and res.exists(history_rel(name)):
            cell, brels = bpd_cell(res, name, mixture=True)
            bpd = bound_doc(res, name)[0]["mean"] if is_bound(name) else exact_bpd(res, name)
            row.update(test_bpd=num(bpd, 4) if bpd is not None else "", test_bpd_as_in_readme=cell)
            rels += brels
        if kind == "flow":
            sampling, rel = sampling_default(res, name)
            if sampling:
                opts = sampling.get("options") or {}
                row.update(default_sampler=sampling.get("sampler", ""),
                           default_options=";".join(f"{k}={v:g}" for k, v in opts.items()),
                           default_temperature=f"{float(sampling.get('temperature', 1.0)):g}")
            if rel:
                sm = sample_summary(res, rel)
                fid, rec = sm["summary"]["fid"], sm["summary"].get("recognisable")
                row.update(fid_mean=num(fid["mean"], 2), fid_sd=num(fid["sd"], 2),
                           recognisable_mean=num(rec["mean"], 4) if rec else "", samples_per_seed=sm["per_seed"],
                           seeds=len(sm["seeds"]))
                rels.append(rel)
        acc = model_metrics(res, name, e).get("test_accuracy") if kind == "oracle" else None
        if acc is not None:
            row["test_accuracy"] = num(acc, 4)
            rels.append(accuracy_file(name))
        row["sources"] = ";".join(dict.fromkeys(rel_results(r) for r in rels))
        w.writerow([row[c] for c in ZOO_CSV_COLUMNS])
    return buf.getvalue()


def render_with_zoo_csv(root: Path = ROOT, write: bool = True) -> Tuple[List[str], List[str]]:
    """`render`, and docs/results/zoo.csv (`zoo_csv`) with it, all or nothing: the csv is rendered before
    anything is written (a RenderError leaves every file as it was) and written after render's files; a stale
    csv is one more diff (so --check fails on it)."""
    root = Path(root)
    models = json.loads((root / "zoo" / "nfzoo_zoo" / "index.json").read_text()).get("models", {})
    new = zoo_csv(Results(root), models)
    diffs, warnings = render(root, write=write)
    path = root / ZOO_CSV
    old = path.read_text() if path.is_file() else ""
    if new != old:
        diffs.append(_diff(old, new, ZOO_CSV))
        if write:
            atomic_write_bytes(path, new.encode())
    return diffs, warnings


def generated_blocks(text: str) -> List[Tuple[str, str]]:
    """(block id, body) of every generated block of a text (Markdown and YAML markers)."""
    return ([(m.group("id"), m.group("body")) for m in MD_BLOCK.finditer(text)]
            + [(m.group("id"), m.group("body")) for m in YAML_BLOCK.finditer(text)])

