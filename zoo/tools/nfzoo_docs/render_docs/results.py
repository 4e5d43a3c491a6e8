"""The result files under docs/results (read once each, cited with their provenance), the markers of a
generated block, and the formatting every block shares."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from nfzoo.evaluation.results import MEASURED_BY

from .knowledge import LEGACY, ORDER

RESULTS = "docs/results"
TOOL = "zoo/tools/render_docs.py"
MD_BLOCK = re.compile(r"(<!-- nfzoo:generated (?P<id>[\w.:+-]+) \(zoo/tools/render_docs\.py; do not edit\) -->\n)"
                      r"(?P<body>.*?)(<!-- nfzoo:end -->)", re.S)
YAML_BLOCK = re.compile(r"(# nfzoo:generated (?P<id>model-index:[\w.+-]+) \(zoo/tools/render_docs\.py; do not "
                        r"edit\)\n)(?P<body>.*?)(# nfzoo:end\n)", re.S)
BPD_TOL = 1e-3                                # test bpds of the same weights (seed-0 dequantization) agree to this
FID_SEEDS = f"{RESULTS}/bench-diffusion/fid-seeds.txt"
BENCH_DIFFUSION = f"{RESULTS}/bench-diffusion/bench-diffusion.json"


class RenderError(Exception):
    """A result file is missing, malformed or stale, or a marker names an unknown block."""


# ------------------------------------------------------------------------------------------ formatting
def num(v: Optional[float], nd: int) -> str:
    """A number with `nd` decimals; "-" for None."""
    return "-" if v is None else f"{v:.{nd}f}"


def pct(v: Optional[float], nd: int = 1) -> str:
    """A share in [0, 1] as a percentage."""
    return "-" if v is None else f"{100 * v:.{nd}f}%"


def pm(s: Optional[Dict[str, float]], nd: int, percent: bool = False) -> str:
    """mean +- sd of a {"mean", "sd", "n"} summary ("(1 seed)" when n = 1); "-" for None."""
    if s is None:
        return "-"
    k = 100.0 if percent else 1.0
    unit = "%" if percent else ""
    if s["n"] == 1:
        return f"{k * s['mean']:.{nd}f}{unit} (1 seed)"
    return f"{k * s['mean']:.{nd}f}{unit} +- {k * s['sd']:.{nd}f}{unit}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    """A Markdown table."""
    return (["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
            + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def short_commit(commit: Optional[str]) -> str:
    """A commit as its first 7 hex digits (keeping a "+dirty" mark); "no commit" for None."""
    if not commit:
        return "no commit"
    return commit[:7] + ("+dirty" if commit.endswith("+dirty") else "")


def rel_results(rel: str) -> str:
    """The path of a file of docs/results from the repository root."""
    return rel if rel.startswith(RESULTS + "/") else f"{RESULTS}/{rel}"


# ------------------------------------------------------------------------------------------ the files
class Results:
    """The result files under ROOT/docs/results, read once each, and how to cite them."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._cache: Dict[str, Any] = {}
        self.warnings: List[str] = []

    def path(self, rel: str) -> Path:
        """The file's path (rel: from the repository root, or from docs/results)."""
        return self.root / rel_results(rel)

    def exists(self, rel: str) -> bool:
        """Whether the file is there."""
        return self.path(rel).is_file()

    def text(self, rel: str) -> str:
        """The file's text; a missing file is a RenderError naming it."""
        rel = rel_results(rel)
        if rel not in self._cache:
            if not self.path(rel).is_file():
                raise RenderError(f"{rel} is missing: the block that renders from it cannot be made")
            self._cache[rel] = self.path(rel).read_text()
        return self._cache[rel]

    def json(self, rel: str) -> Any:
        """The file's JSON document."""
        try:
            return json.loads(self.text(rel))
        except json.JSONDecodeError as exc:
            raise RenderError(f"{rel_results(rel)} is not JSON: {exc}") from None

    def history(self, rel: str) -> List[Dict[str, Any]]:
        """A training history (a list of epoch records, as `nfzoo train` writes history.json)."""
        h = self.json(rel)
        if not isinstance(h, list) or not h or not all(isinstance(r, dict) for r in h):
            raise RenderError(f"{rel_results(rel)} is not a list of epoch records")
        return h

    def legacy(self, rel: str) -> Optional[str]:
        """What models.json's "legacy" says about an older file, if the file is still the one described."""
        key = rel_results(rel)[len(RESULTS) + 1:]
        if key not in LEGACY:
            return None
        prefix, note = LEGACY[key]
        if not hashlib.sha256(self.path(rel).read_bytes()).hexdigest().startswith(prefix):
            if self.run_settings(rel):
                return None               # a new run, with its train.json: cite() names that instead
            warning = (f"{rel_results(rel)} changed since LEGACY described it: its old command is not shown "
                       "(give it a measured_by record or a MODEL-train.json)")
            if warning not in self.warnings:
                self.warnings.append(warning)
            return None
        return note

    def cite(self, rel: str) -> str:
        """The file, with its measured_by record (date, commit, command, threads) or what LEGACY knows."""
        rel = rel_results(rel)
        self.text(rel)
        doc = self.json(rel) if rel.endswith(".json") else None
        mb = doc.get(MEASURED_BY) if isinstance(doc, dict) else None
        if isinstance(mb, dict):
            return (f"`{rel}` (measured {str(mb.get('date'))[:10]} at {short_commit(mb.get('commit'))}, "
                    f"{mb.get('threads')} thread(s): `{mb.get('command')}`)")
        note = self.legacy(rel)
        if note:
            return f"`{rel}` (no measured_by record; {note})"
        settings = self.run_settings(rel)
        if settings:
            return f"`{rel}` (no measured_by record; the run's settings: `{settings}`)"
        return f"`{rel}` (no measured_by record)"

    def run_settings(self, rel: str) -> Optional[str]:
        """The train.json beside a run's history (MODEL[-finetune]-history.json -> MODEL[-finetune]-train.json),
        when there is one."""
        rel = rel_results(rel)
        if not rel.endswith("-history.json"):
            return None
        train = rel[:-len("-history.json")] + "-train.json"
        return train if self.exists(train) else None

    def sources(self, rels: Sequence[str]) -> List[str]:
        """The "Sources:" lines under a table, one per file."""
        seen: List[str] = []
        for r in rels:
            if rel_results(r) not in seen:
                seen.append(rel_results(r))
        return ["", "Sources:", ""] + [f"- {self.cite(r)}" for r in seen]

    def sample_files(self, model: Optional[str] = None) -> List[str]:
        """docs/results/samples/MODEL/*.json (every model's when `model` is None), in ORDER, then by name."""
        base = self.root / RESULTS / "samples"
        files = sorted(base.glob(f"{model}/*.json" if model else "*/*.json"))
        rank = {m: i for i, m in enumerate(ORDER)}
        files.sort(key=lambda p: (rank.get(p.parent.name, len(rank)), p.parent.name, p.name))
        return [p.relative_to(self.root).as_posix() for p in files]


# ------------------------------------------------------------------------------------------ benchmark files
def bench_rows(res: Results, rel: str) -> List[Dict[str, Any]]:
    """The rows of an `nfzoo bench --json` document."""
    d = res.json(rel)
    if not isinstance(d, dict) or not isinstance(d.get("rows"), list):
        raise RenderError(f"{rel} is not an `nfzoo bench --json` document (no 'rows')")
    return d["rows"]


def fid_seeds(res: Results) -> Dict[Tuple[str, str, int, float], Dict[str, Any]]:
    """docs/results/bench-diffusion/fid-seeds.txt: (model, sampler, steps, eta) -> {"summary", "fids",
    "block"} where block is the header comment the line falls under."""
    out: Dict[Tuple[str, str, int, float], Dict[str, Any]] = {}
    block = ""
    line_re = re.compile(r"^(?P<model>.+?) (?P<sampler>\w+) (?P<steps>\d+)(?: eta=(?P<eta>[\d.]+))? FIDs "
                         r"\[(?P<fids>[^\]]*)\] mean (?P<mean>[\d.]+) sd (?P<sd>[\d.]+)$")
    for line in res.text(FID_SEEDS).splitlines():
        if line.startswith("#"):
            block = line.lstrip("# ")
            continue
        m = line_re.match(line.strip())
        if not m:
            if line.strip():
                raise RenderError(f"{FID_SEEDS}: cannot read the line {line!r}")
            continue
        fids = [float(x) for x in m["fids"].split(",")]
        key = (m["model"], m["sampler"], int(m["steps"]), float(m["eta"] or 0))
        out[key] = {"summary": {"mean": float(m["mean"]), "sd": float(m["sd"]), "n": len(fids)}, "fids": fids,
                    "block": block}
    return out


def block_commit(block: str) -> str:
    """The commit a fid-seeds block header names ("committed in abc1234")."""
    m = re.search(r"committed in ([0-9a-f]{7})", block)
    return m.group(1) if m else "?"
