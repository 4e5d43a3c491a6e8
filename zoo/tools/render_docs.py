"""Every published number from the file that measured it: render the generated blocks of README.md and of the
zoo's model cards, and the metrics of zoo/nfzoo_zoo/index.json, from the result files under docs/results.

    .venv/bin/python zoo/tools/render_docs.py            # rewrite whatever differs from the files
    .venv/bin/python zoo/tools/render_docs.py --check    # change nothing; exit 1 with a unified diff if stale

A generated block sits between two markers, in Markdown

    <!-- nfzoo:generated BLOCK-ID (zoo/tools/render_docs.py; do not edit) -->
    ...
    <!-- nfzoo:end -->

and in a card's YAML front matter (the `metrics:` list and the `model-index`) between the comment lines
`# nfzoo:generated model-index:NAME (zoo/tools/render_docs.py; do not edit)` and `# nfzoo:end`. Only what is
between markers is rewritten; BLOCKS below lists the ids (`ID` or `ID:MODEL`). In index.json each entry's
"metrics" are rewritten from the same files, the numbers in its "description" that DESCRIPTION_NUMBERS
knows are re-rendered, and the sha256 pin of a card is refreshed after the card changes (update_index's
pin_files). Every block names its files; a file with a "measured_by" record (nfzoo.results.write_result,
`nfzoo eval ... --out`) shows its date, commit and command; an older file without one shows the command
known from its card (LEGACY, valid only while the file's sha256 is the one recorded there). Stochastic
numbers come as mean +- sd over the seeds a file holds, with their number. Torch is never imported.

The shipped weights of a zoo model come through a chain of recorded steps, each with its file (MODEL: the zoo
name): the training run (docs/results/MODEL-history.json, and its train.json as MODEL-train.json), a fine-tune
(MODEL-finetune-history.json, MODEL-finetune-train.json: `nfzoo train ... --init MODEL`), a refit of the latent
prior (MODEL-refit.json: `nfzoo refit-prior`). The model's test bpd is that of the last step there is (the
refit's test_bpd_after, shown beside its test_bpd_before "with the N(0, I) prior"; else the fine-tune's last
test bpd; else the training run's), and the recipe is the chain of their commands. A model with noise_sigma > 0
in its config.json says that its bpd is on clean data and that it was trained on noisy data.

Sample quality comes from docs/results/samples/MODEL/SAMPLER-tT.json (written by `nfzoo eval MODEL --dataset
mnist5k --samples N --seeds S -t T --out FILE`): one row per file; no file, no row; a flow's file whose test
bpd differs from the shipped weights' (above; by more than 1e-3) measured other weights and is refused. The
setting in the model's config.json "sampling" (docs/results/samples/sweep.py --choose) is marked as the
default, and the README's zoo table gives each model's default setting beside its test bpd. GLEM's NF-A
comes from docs/results/MODEL-classify.json (`nfzoo eval MODEL --dataset mnist5k --task classify --out
FILE`) when present. tests/test_generated_docs.py runs --check.

One module of ~1500 lines on purpose (one script that knows every table; a tenth of it is LEGACY's notes).
"""
from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from update_index import pin_files  # noqa: E402  (the sibling tool; zoo/tools is not a package)

from nfzoo.constants import CARD_NAME  # noqa: E402
from nfzoo.results import MEASURED_BY, mean_sd  # noqa: E402
from nfzoo.safeio import atomic_write_bytes, atomic_write_json  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RESULTS = "docs/results"
TOOL = "zoo/tools/render_docs.py"
MD_BLOCK = re.compile(r"(<!-- nfzoo:generated (?P<id>[\w.:+-]+) \(zoo/tools/render_docs\.py; do not edit\) -->\n)"
                      r"(?P<body>.*?)(<!-- nfzoo:end -->)", re.S)
YAML_BLOCK = re.compile(r"(# nfzoo:generated (?P<id>model-index:[\w.+-]+) \(zoo/tools/render_docs\.py; do not "
                        r"edit\)\n)(?P<body>.*?)(# nfzoo:end\n)", re.S)
BPD_TOL = 1e-3                                # test bpds of the same weights (seed-0 dequantization) agree to this
BOUND_ARCHS = ("ddpm", "diffused-flows")      # their bpd is DDPM's variational bound, one timestep per image
ORDER = ("glow-mnist5k", "nsf-mnist5k", "realnvp-mnist5k", "inverse-flow-mnist5k", "cinc-flow-mnist5k",
         "quad-flow-mnist5k", "glem-mnist5k", "ddpm-mnist5k", "diffused-flows-mnist5k")
REFERENCE = f"{RESULTS}/real-reference/mnist5k-oracle-n1000.json"
FID_SEEDS = f"{RESULTS}/bench-diffusion/fid-seeds.txt"
BENCH_DIFFUSION = f"{RESULTS}/bench-diffusion/bench-diffusion.json"


class RenderError(Exception):
    """A result file is missing, malformed or stale, or a marker names an unknown block."""


# Files written before result files recorded what measured them: what the cards and the git log say about
# them. The note holds only while the file's sha256 starts with the recorded prefix (a replaced file, e.g. a
# retrained model's history, loses it: give it a measured_by record, or a MODEL-train.json, instead).
_C = "committed in"
LEGACY: Dict[str, Tuple[str, str]] = {
    "glow-mnist5k-history.json": ("79eb395d799745f8", f"{_C} e1192c1, 2026-11-25; 2 threads; `nfzoo train glow "
                                  "--dataset mnist5k --epochs 95 --batch-size 64 --lr 2e-3 --lr-schedule cosine "
                                  "--set levels=2 --set steps=4 --set hidden=64 --set preprocess=logit --seed 0`"),
    "nsf-mnist5k-history.json": ("df63717af0e83daf", f"{_C} e10cd7c, 2026-11-25; 1 thread; `nfzoo train nsf "
                                 "--dataset mnist5k --epochs 16 --batch-size 64 --lr 2e-3 --lr-schedule cosine "
                                 "--set levels=2 --set steps=4 --set hidden=64 --set preprocess=logit --seed 0`"),
    "realnvp-mnist5k-history.json": ("1465f1f50b6c3a39", f"{_C} e10cd7c, 2026-11-25; 1 thread; `nfzoo train "
                                     "realnvp --dataset mnist5k --epochs 20 --batch-size 64 --lr 2e-3 --set "
                                     "levels=2 --set steps=2 --set hidden=64 --set blocks=1 --seed 0`"),
    "inverse-flow-mnist5k-history.json": ("c4e3a1861bd8f3a9", f"{_C} eb67820, 2026-11-25; 1 thread; `nfzoo "
                                          "train inverse-flow --dataset mnist5k --epochs 90 --batch-size 64 --lr "
                                          "2e-3 --lr-schedule cosine --set levels=2 --set steps=4 --set hidden=64 "
                                          "--seed 0`"),
    "cinc-flow-mnist5k-history.json": ("7187f00b6ef75ceb", f"{_C} 526b641, 2026-11-25; 1 thread; `nfzoo train "
                                       "cinc-flow --dataset mnist5k --epochs 90 --batch-size 64 --lr 2e-3 "
                                       "--lr-schedule cosine --set levels=2 --set steps=4 --set hidden=34 "
                                       "--seed 0`"),
    "quad-flow-mnist5k-history.json": ("b0aee1747a7d1132", f"{_C} 96af92a, 2026-11-25; 1 thread; `nfzoo train "
                                       "quad-flow --dataset mnist5k --epochs 60 --batch-size 64 --lr 2e-3 "
                                       "--lr-schedule cosine --set levels=2 --set steps=4 --set hidden=34 "
                                       "--seed 0`"),
    "glem-mnist5k-history.json": ("9b22d68669e07576", f"{_C} 4cd220c, 2026-11-25; 1 thread; `nfzoo train glem "
                                  "--dataset mnist5k --epochs 80 --batch-size 64 --lr 2e-3 --lr-schedule cosine "
                                  "--set levels=2 --set steps=4 --set hidden=64 --set kl_weight=0.45 --set "
                                  "kl_weight_final=0.25 --set kl_schedule=exponential --set em_fraction=0.15 "
                                  "--set prior_lr_scale=3 --seed 0`"),
    "glem-mnist5k-lambda0-history.json": ("12048f6155e1a0a1", f"{_C} 4cd220c, 2026-11-25; the glem-mnist5k "
                                          "command with `--set kl_weight=0 --set kl_weight_final=0`"),
    "ddpm-mnist5k-history.json": ("adb8ce44539a65c6", f"{_C} 55f9c7a, 2026-11-26; 1 thread; `nfzoo train ddpm "
                                  "--dataset mnist5k --epochs 60 --batch-size 64 --lr 1e-3 --lr-schedule cosine "
                                  "--grad-clip 1 --seed 0`; its test_bpd column came from an older estimator of "
                                  "the bound (negative values) and is not used"),
    "diffused-flows-mnist5k-history.json": ("bdd4cbeb74fcb3fc", f"{_C} e75f00c, 2026-11-26; 1 thread; `nfzoo "
                                            "train diffused-flows --dataset mnist5k --epochs 120 --lr 1e-3 "
                                            "--lr-schedule cosine --grad-clip 1 --set objective=hybrid --set "
                                            "init_flow=runs/e1/glow-1x2 --set levels=1 --set steps=2 --set "
                                            "hidden=32 --set timesteps=1000 --seed 0`, after the stage-1 glow"),
    "diffused-flows-two-stage/stage1-glow-history.json": (
        "928b61057ef1b8a7", f"{_C} e75f00c, 2026-11-26; the stage-1 glow of diffused-flows-mnist5k: `nfzoo train "
        "glow --dataset mnist5k --epochs 20 --lr 1e-3 --lr-schedule cosine --grad-clip 1 --set levels=1 --set "
        "steps=2 --set hidden=32 --seed 0 --out runs/e1/glow-1x2`"),
    "diffused-flows-two-stage/history.json": ("c9df886f185092fb", f"{_C} e75f00c, 2026-11-26; the two-stage "
                                              "model of b017ba1: `--set objective=two-stage`, 60 epochs, see "
                                              "docs/results/diffused-flows-two-stage/model-card.md"),
    "diffused-flows-e2e/elbo-from-shallow-flow-history.json": ("12cbaa3c34b58dab", f"{_C} b017ba1, 2026-11-26; "
                                                               "`--set objective=elbo`, stopped at epoch 13, see "
                                                               "docs/results/diffused-flows-e2e/README.md"),
    "diffused-flows-e2e/hybrid-from-shallow-flow-history.json": ("43349aaca4ea4200", f"{_C} b017ba1, "
                                                                 "2026-11-26; `--set objective=hybrid`, 60 epochs, "
                                                                 "see docs/results/diffused-flows-e2e/README.md"),
    "glow-mnist5k-constant-lr-history.json": ("9811de3ba7572906", f"{_C} e10cd7c, 2026-11-25; the glow recipe "
                                              "of that time with a constant learning rate, stopped after epoch 54"),
    "ddpm-mnist5k-bound-seeds.json": ("45d8f7d82508dfaa", f"{_C} 55f9c7a, 2026-11-26; `python "
                                      "docs/results/diffusion_bound_seeds.py ddpm-mnist5k 10`"),
    "diffused-flows-mnist5k-bound-seeds.json": ("3ade1aec2148879f", f"{_C} e75f00c, 2026-11-26; `python "
                                                "docs/results/diffusion_bound_seeds.py diffused-flows-mnist5k 10`"),
    "glem-mnist5k-eval.json": ("5c854553a1610529", f"{_C} 4cd220c, 2026-11-25; `nfzoo eval glem-mnist5k "
                               "--dataset mnist5k --task classify` and `nfzoo eval glem-mnist5k --dataset mnist5k "
                               "--samples 1000 --temperature T [--sampler rfcm]`, seed 0"),
    "glem-mnist5k-lambda0-eval.json": ("126864e17fd28a39", f"{_C} 4cd220c, 2026-11-25; the same commands on the "
                                       "lambda = 0 run, seed 0"),
    "bench-diffusion/bench-diffusion.json": ("ae767baa003f2844", f"{_C} f79830a, 2026-11-26; `nfzoo bench "
                                             "diffusion --json`, 2 threads, nothing else running, seed 0"),
    "bench-diffusion/fid-seeds.txt": ("b4d6320db5921a92", "`python docs/results/bench-diffusion/fid_seeds.py "
                                      "MODEL SAMPLER STEPS 5 [ETA]`, 1 thread; each block's header says when"),
    "bench-train.json": ("bb702a4c31ca4be6", f"{_C} 462ec88, 2026-11-25; `nfzoo bench train --json`, 2 threads, "
                         "idle machine"),
    "bench-cinc.json": ("c8f2cb35af5f1451", f"{_C} bad8e68, 2026-11-25; `nfzoo bench cinc --json`, 2 threads, idle "
                        "machine"),
    "bench-sampling.json": ("cef3dc3db9e17f43", f"{_C} bad8e68, 2026-11-25; `nfzoo bench sampling --json`, "
                            "2 threads, idle machine"),
    "bench-scaling-cpu.json": ("f876d9c62574ba72", f"{_C} 53b9044, 2026-11-26; `nfzoo bench scaling --json` on "
                               "the 2-core CPU"),
    "gpu/run1/bench-sampling-cuda.json": ("2b2e638c3b1a7b54", f"{_C} 24e6d11, 2026-11-26 (moved to run1/ in "
                                          "41bd243); `nfzoo bench sampling --device cuda --json`, one H100"),
    "gpu/run1/pytest-cuda.log": ("db5ae66ad1dbeb48", f"{_C} 24e6d11, 2026-11-26 (moved to run1/ in 41bd243)"),
    "gpu/run2/bench-cinc-cuda.json": ("36108633a8dab45e", f"{_C} 41bd243, 2026-11-26; `bash "
                                      "docs/results/gpu/check_all.sh`, one H100"),
    "gpu/run2/bench-sampling-cuda.json": ("0a875e7752ecdcf7", f"{_C} 41bd243, 2026-11-26; `bash "
                                          "docs/results/gpu/check_all.sh`, one H100"),
    "gpu/run2/bench-scaling-cuda.json": ("d5e5a549e638dae0", f"{_C} 41bd243, 2026-11-26; `bash "
                                         "docs/results/gpu/check_all.sh`, one H100"),
    "gpu/run2/pytest-cuda.log": ("a23a7c07f8507dd0", f"{_C} 41bd243, 2026-11-26; `bash "
                                 "docs/results/gpu/check_all.sh`, one H100"),
    "heads/cnn-a-glem-mnist5k.json": ("4f9695b989546006", f"{_C} 83b3e29, 2026-11-26; `nfzoo eval glem-mnist5k "
                                      "--dataset mnist5k --task cnn-a --samples 5000 --sampler rfcm --temperature "
                                      "0.7`, 1 thread"),
    "heads/anonymize-ddpm-mnist5k.json": ("8200f0d564e15dc2", f"{_C} cacba94, 2026-11-26; `nfzoo eval "
                                          "ddpm-mnist5k --dataset mnist5k --task anonymize --set average=3`"),
    "heads/ood-glow-mnist5k.json": ("44f432402092c4c5", f"{_C} 83b3e29, 2026-11-26; `nfzoo eval glow-mnist5k "
                                    "--dataset mnist5k --task ood`"),
    "heads/ood-ddpm-mnist5k-repeats1.json": ("b7d2f804ba2e4f9a", f"{_C} 83b3e29, 2026-11-26; `nfzoo eval "
                                             "ddpm-mnist5k --dataset mnist5k --task ood` with one bound estimate "
                                             "per image"),
    "heads/ood-ddpm-mnist5k.json": ("048a5696026e8feb", f"{_C} b1ef688, 2026-11-26; `nfzoo eval ddpm-mnist5k "
                                    "--dataset mnist5k --task ood` (8 bound estimates per image)"),
    "heads/augment-glow-mnist5k.json": ("e52bd6e84565cc23", f"{_C} 0871ea2, 2026-11-26; `nfzoo eval glow-mnist5k "
                                        "--dataset mnist5k --task augment`"),
}


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
        """What LEGACY says about an older file, if the file is still the one described."""
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


# ------------------------------------------------------------------------------------------ readers
def history_rel(name: str) -> str:
    """The training history of a zoo model."""
    return f"{RESULTS}/{name}-history.json"


def is_bound(name: str) -> bool:
    """Whether the model's bpd is a variational bound (the diffusion models)."""
    return any(name.startswith(a + "-") for a in BOUND_ARCHS)


def last_tested(history: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The last epoch record with a test bpd."""
    tested = [r for r in history if isinstance(r.get("test_bpd"), (int, float))]
    if not tested:
        raise RenderError("a history without any test_bpd")
    return tested[-1]


def train_rel(name: str, step: str = "") -> str:
    """A zoo model's train.json copy: MODEL-train.json, or MODEL-finetune-train.json for step "finetune"."""
    return f"{RESULTS}/{name}{'-' + step if step else ''}-train.json"


def finetune_history_rel(name: str) -> str:
    """The history of a zoo model's fine-tune run (`nfzoo train ... --init MODEL`)."""
    return f"{RESULTS}/{name}-finetune-history.json"


def refit_rel(name: str) -> str:
    """The result file of `nfzoo refit-prior` for a zoo model (its refit.json)."""
    return f"{RESULTS}/{name}-refit.json"


def train_command(res: Results, name: str, step: str = "") -> Tuple[Optional[str], Optional[str]]:
    """(the training command, its file) from docs/results/NAME-train.json (a run's train.json; with step
    "finetune" the fine-tune run's NAME-finetune-train.json), else (None, None)."""
    rel = train_rel(name, step)
    if not res.exists(rel):
        return None, None
    t = res.json(rel).get("train", {})
    args = ["nfzoo", "train", str(t.get("arch")), "--dataset", str(t.get("dataset"))]
    for key, opt in (("epochs", "--epochs"), ("batch_size", "--batch-size"), ("lr", "--lr"),
                     ("optimizer", "--optimizer"), ("warmup_steps", "--warmup"), ("lr_schedule", "--lr-schedule"),
                     ("grad_clip", "--grad-clip"), ("seed", "--seed"), ("precision", "--precision"),
                     ("init_from", "--init"), ("ema", "--ema"), ("swa_epochs", "--swa-epochs")):
        if t.get(key) is not None and not (key == "swa_epochs" and not t[key]):
            args += [opt, str(t[key])]
    for k, v in (t.get("model") or {}).items():
        args += ["--set", f"{k}={v if isinstance(v, str) else json.dumps(v)}"]
    return shlex.join(args), rel


def legacy_command(res: Results, rel: str) -> Optional[str]:
    """The `nfzoo train ...` command LEGACY records for an older history (while it is that file)."""
    note = res.legacy(rel) if res.exists(rel) else None
    m = re.search(r"`(nfzoo train [^`]+)`", note or "")
    return m.group(1) if m else None


def zoo_config(res: Results, name: str) -> Dict[str, Any]:
    """The zoo model's config.json ({} when it has none)."""
    path = res.root / "zoo" / "nfzoo_zoo" / "models" / name / "config.json"
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise RenderError(f"{path.relative_to(res.root).as_posix()} is not JSON: {exc}") from None
    return doc if isinstance(doc, dict) else {}


def noise_sigma(res: Results, name: str) -> float:
    """The zoo model's noise augmentation (config.json "config"."noise_sigma"; 0: none)."""
    v = (zoo_config(res, name).get("config") or {}).get("noise_sigma") or 0
    return float(v) if isinstance(v, (int, float)) else 0.0


def noise_note(res: Results, name: str) -> Optional[str]:
    """What the test bpd of a noise-augmented model is (None for a model without noise augmentation)."""
    sigma = noise_sigma(res, name)
    if sigma <= 0:
        return None
    return (f"{name}'s test bpd is on the clean test images; the model was trained on data + N(0, {sigma:g}^2) "
            "noise (TarFlow's noise augmentation, `noise_sigma` in its config.json), and its samples are "
            "denoised")


def shipped(res: Results, name: str) -> Optional[Dict[str, Any]]:
    """The test bpd of the weights that ship, from the last step of the model's chain: {"bpd", "rel", "step"
    ("refit", "finetune" or "training"), "before": (bpd, file) of the step before a refit, or None}. None for
    a diffusion model (a bound) or a model without history. A refit whose test_bpd_before is not the bpd the
    step before it ended at (1e-3) started from other weights: a RenderError."""
    if is_bound(name) or not res.exists(history_rel(name)):
        return None
    bpd, rel, step = float(last_tested(res.history(history_rel(name)))["test_bpd"]), history_rel(name), "training"
    if res.exists(finetune_history_rel(name)):
        rel, step = finetune_history_rel(name), "finetune"
        bpd = float(last_tested(res.history(rel))["test_bpd"])
    if not res.exists(refit_rel(name)):
        return {"bpd": bpd, "rel": rel, "step": step, "before": None}
    r = res.json(refit_rel(name))
    try:
        before, after = float(r["test_bpd_before"]), float(r["test_bpd_after"])
    except (KeyError, TypeError, ValueError):
        raise RenderError(f"{refit_rel(name)} needs numbers test_bpd_before and test_bpd_after (`nfzoo "
                          "refit-prior ... --out DIR` writes them to DIR/refit.json)") from None
    if abs(before - bpd) > BPD_TOL:
        raise RenderError(f"{refit_rel(name)} refitted weights of test bpd {before:.4f}, but {rel} ends at "
                          f"{bpd:.4f}: the refit started from other weights of {name}; refit again (or remove it)")
    return {"bpd": after, "rel": refit_rel(name), "step": "refit", "before": (before, rel)}


def bpd_cell(res: Results, name: str, mixture: bool = False) -> Tuple[str, List[str]]:
    """A zoo model's test bpd as a table cell (the shipped weights'; a refit's with the N(0, I) prior's
    beside it; a diffusion model's bound as mean +- sd over seeds; with `mixture`, a GLEM model's bpd of
    the class mixture beside its p(x given y)), and the files it comes from."""
    if mixture and name.startswith("glem-"):
        cell, rels = bpd_cell(res, name)
        mix = glem_numbers(res, name).get("mixture")
        if mix:
            return cell + f" (p(x given y)); {mix[0]:.4f} (mixture p(x))", rels + [mix[1]]
        return cell, rels
    if is_bound(name):
        s, seed0, brel = bound_doc(res, name)
        return f"{pm(s, 3)} (upper bound; mean +- sd over {s['n']} seeds; seed 0: {seed0:.3f})", [brel]
    sh = shipped(res, name)
    if sh is None:
        return "-", []
    parts, rels = [], [sh["rel"]]
    if sh["before"]:
        parts.append(f"fitted latent prior; {sh['before'][0]:.4f} with the N(0, I) prior")
        rels.insert(0, sh["before"][1])
    if noise_sigma(res, name) > 0:
        parts.append(f"clean images; trained with noise sigma {noise_sigma(res, name):g}")
    return f"{sh['bpd']:.4f}" + (f" ({'; '.join(parts)})" if parts else ""), rels


def recipe(res: Results, name: str) -> List[Tuple[str, Optional[str], List[str]]]:
    """The chain of steps that made the shipped weights: [(what, its command or None, its files)], each
    command from its file (a run's train.json, else what LEGACY records for its history; a refit's
    measured_by.command)."""
    steps: List[Tuple[str, Optional[str], List[str]]] = []
    hist = history_rel(name)
    if not res.exists(hist):
        return steps
    cmd, crel = train_command(res, name)
    steps.append(("train", cmd or legacy_command(res, hist), [r for r in (crel, hist) if r]))
    if res.exists(finetune_history_rel(name)) or res.exists(train_rel(name, "finetune")):
        cmd, crel = train_command(res, name, "finetune")
        fh = finetune_history_rel(name)
        steps.append(("fine-tune", cmd, [r for r in (crel, fh if res.exists(fh) else None) if r]))
    if res.exists(refit_rel(name)):
        mb = res.json(refit_rel(name)).get(MEASURED_BY) or {}
        steps.append(("refit the latent prior", mb.get("command"), [refit_rel(name)]))
    return steps


def bound_doc(res: Results, name: str) -> Tuple[Dict[str, float], float, str]:
    """(mean_sd of the bound over seeds, the seed-0 value, the file) of a diffusion model."""
    rel = f"{RESULTS}/{name}-bound-seeds.json"
    d = res.json(rel)
    seeds, vals = d.get("seeds"), d.get("bpd")
    if not isinstance(vals, list) or not isinstance(seeds, list) or len(seeds) != len(vals) or 0 not in seeds:
        raise RenderError(f"{rel}: needs lists 'seeds' (with 0) and 'bpd' of the same length")
    return mean_sd(vals), float(vals[seeds.index(0)]), rel


def exact_bpd(res: Results, name: str) -> Optional[float]:
    """The test bpd of an exact-likelihood zoo model's shipped weights (`shipped`; None for a diffusion model
    or without history)."""
    sh = shipped(res, name)
    return None if sh is None else sh["bpd"]


def check_fresh(res: Results, rel: str, bpd: Optional[float], name: str) -> None:
    """A file that records a test bpd must agree with the shipped weights' (1e-3; both use seed 0's
    dequantization noise): else it measured other weights."""
    sh = shipped(res, name)
    if bpd is not None and sh is not None and abs(float(bpd) - sh["bpd"]) > BPD_TOL:
        raise RenderError(f"{rel} records test bpd {bpd:.4f} but the shipped weights of {name} have {sh['bpd']:.4f} "
                          f"({sh['rel']}): it measured other weights of {name}; measure again (or remove it)")


SAMPLE_KEYS = ("fid", "coverage", "density", "recognisable", "label_reliability")


def sample_summary(res: Results, rel: str) -> Dict[str, Any]:
    """A sample-quality file as {"doc", "model", "stem", "summary": {metric: mean_sd}, "seeds", "n"}."""
    d = res.json(rel)
    if not isinstance(d, dict):
        raise RenderError(f"{rel} is not a JSON object")
    model = d.get("model") or Path(rel).parent.name
    if "summary" in d:
        summary = {k: v for k, v in d["summary"].items() if k in SAMPLE_KEYS}
        seeds = d.get("seeds") or [r.get("seed") for r in d.get("per_seed", [])]
        per_seed = d.get("n_samples", 0) // max(1, len(seeds))
    else:   # one seed: the metrics at the top
        summary = {k: mean_sd([d[k]]) for k in SAMPLE_KEYS if isinstance(d.get(k), (int, float))}
        seeds, per_seed = [d.get("seed", 0)], d.get("n_samples")
    if "fid" not in summary:
        raise RenderError(f"{rel} has no FID (neither 'summary' nor a top-level 'fid')")
    check_fresh(res, rel, d.get("bpd"), Path(rel).parent.name)
    return {"doc": d, "model": model, "stem": Path(rel).stem, "summary": summary, "seeds": seeds,
            "per_seed": per_seed}


def _same(a: Any, b: Any) -> bool:
    """Two settings' values equal (numbers to 1e-9)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)) < 1e-9
    return a == b


def sampling_default(res: Results, name: str) -> Tuple[Dict[str, Any], Optional[str]]:
    """(the zoo model's config.json "sampling" ({"sampler", "temperature", "options", "source"}; {} when none), the
    sample file of that setting or None). The file is "source" (docs/results/samples/sweep.py --choose
    writes the file it chose from), which must be a sample file of the model and measure that sampler
    and temperature (else a RenderError); without a source, the model's file of that sampler and
    temperature."""
    sampling = zoo_config(res, name).get("sampling")
    if not isinstance(sampling, dict) or not sampling:
        return {}, None
    where = f"zoo/nfzoo_zoo/models/{name}/config.json"
    files = res.sample_files(name)
    src = sampling.get("source")
    if src:
        if src not in files:
            raise RenderError(f"{where}: sampling.source {src!r} is not a sample-quality file of {name} (one of "
                              f"{RESULTS}/samples/{name}/*.json): measure it or choose again (sweep.py --choose)")
        d = res.json(src)
        for key in ("sampler", "temperature"):
            if key in sampling and not _same(d.get(key), sampling[key]):
                raise RenderError(f"{where}: sampling.{key} is {sampling[key]!r} but its source {src} measured "
                                  f"{key} {d.get(key)!r}")
        if not _same_options(d, sampling):
            raise RenderError(f"{where}: sampling.options are {sampling.get('options') or {}!r} but its source "
                              f"{src} measured {_options(d)!r}")
        return sampling, src
    for rel in files:
        d = res.json(rel)
        if (all(_same(d.get(k), sampling[k]) for k in ("sampler", "temperature") if k in sampling)
                and _same_options(d, sampling)):
            return sampling, rel
    return sampling, None


def _options(d: Dict[str, Any]) -> Dict[str, Any]:
    """The sampler options a sample file measured with (nfzoo.results.measured_sampler_options)."""
    from nfzoo.results import measured_sampler_options

    return measured_sampler_options(d)


def _same_options(d: Dict[str, Any], sampling: Dict[str, Any]) -> bool:
    """A sample file `d` measured the options of the sampling record (the same keys, equal values)."""
    opts, measured = sampling.get("options") or {}, _options(d)
    return set(opts) == set(measured) and all(_same(opts[k], measured[k]) for k in opts)


def default_line(res: Results, name: str) -> Optional[str]:
    """The sentence that says which sampler and temperature a model uses by default and which file chose them
    (None when its config.json has no "sampling")."""
    sampling, rel = sampling_default(res, name)
    if not sampling:
        return None
    opts = sampling.get("options") or {}
    what = (f"{sampler_label({'sampler': sampling.get('sampler', 'its default sampler'), **opts, 'sampler_options': ','.join(opts)})}"
            f" at T={sampling.get('temperature', 1.0):g}")
    line = (f"Default setting of {name} (its config.json \"sampling\": what `model.sample` and `nfzoo sample` use "
            f"when given no sampler, options or temperature): {what}")
    if rel and sampling.get("source"):
        return line + f", chosen by `docs/results/samples/sweep.py --choose` from `{rel}` (the row marked \"(the " \
                      "default)\": the lowest mean FID among the settings without non-finite samples)."
    if rel:
        return line + f"; its row (marked \"(the default)\") is `{rel}`."
    return line + "; no sample-quality file measures that setting."


def sampler_label(d: Dict[str, Any]) -> str:
    """The sampler and its options, e.g. "ddim, 50 steps, eta 1"."""
    out = str(d.get("sampler") or "default")
    if d.get("steps") is not None:
        out += f", {d['steps']} steps"
    if d.get("eta") is not None:
        out += f", eta {d['eta']:g}"
    for k, v in sorted(_options(d).items()):   # a plugin sampler's own, e.g. guidance 2
        if k not in ("steps", "eta"):
            out += f", {k.replace('_', ' ')} {v:g}" if isinstance(v, (int, float)) else f", {k} {v}"
    return out


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


def bench_rows(res: Results, rel: str) -> List[Dict[str, Any]]:
    """The rows of an `nfzoo bench --json` document."""
    d = res.json(rel)
    if not isinstance(d, dict) or not isinstance(d.get("rows"), list):
        raise RenderError(f"{rel} is not an `nfzoo bench --json` document (no 'rows')")
    return d["rows"]


def legacy_glem_eval(res: Results, name: str) -> Optional[str]:
    """docs/results/NAME-eval.json (the GLEM evaluation written before result files had provenance), when it
    is there and measured the weights of the model's history; None otherwise (a retrained model's old
    numbers are not shown)."""
    rel = f"{RESULTS}/{name}-eval.json"
    if not res.exists(rel):
        return None
    want = exact_bpd(res, name)
    bpd = res.json(rel).get("bpd")
    if want is not None and bpd is not None and abs(float(bpd) - want) > BPD_TOL:
        if f"{rel} is stale" not in " ".join(res.warnings):
            res.warnings.append(f"{rel} is stale (test bpd {bpd:.4f}, the shipped weights have {want:.4f}): not "
                                "shown")
        return None
    return rel


def glem_numbers(res: Results, name: str) -> Dict[str, Tuple[float, str]]:
    """NF-A, the test bpd of p(x given y) and of the mixture p(x), each (value, file): NF-A from
    docs/results/NAME-classify.json (`nfzoo eval NAME --task classify --out FILE`) or else the older eval
    file; the mixture from the older eval file or else a sample-quality file (`nfzoo eval` records it)."""
    out: Dict[str, Tuple[float, str]] = {}
    legacy = legacy_glem_eval(res, name)
    classify = f"{RESULTS}/{name}-classify.json"
    if res.exists(classify):
        out["nf_a"] = (float(res.json(classify)["accuracy"]), classify)
    elif legacy:
        out["nf_a"] = (float(res.json(legacy)["nf_a"]), legacy)
    if res.exists(history_rel(name)):
        out["bpd"] = (float(last_tested(res.history(history_rel(name)))["test_bpd"]), history_rel(name))
    if legacy:
        out["mixture"] = (float(res.json(legacy)["bpd_marginal"]), legacy)
    else:
        for rel in res.sample_files(name):
            if isinstance(res.json(rel).get("bpd_marginal"), (int, float)):
                out["mixture"] = (float(res.json(rel)["bpd_marginal"]), rel)
                break
    return out


# ------------------------------------------------------------------------------------------ blocks
def b_zoo_training(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """The zoo models' test bpd (of the weights that ship) and epochs, with the chain of commands that made
    each."""
    rows, rels, recipes, notes = [], [], [], []
    names = [n for n in ORDER if n in index] + sorted(n for n in index if n not in ORDER)
    for name in names:
        e = index[name]
        if e.get("kind", "flow") != "flow" or not res.exists(history_rel(name)):
            continue
        h = res.history(history_rel(name))
        rels.append(history_rel(name))
        bpd, brels = bpd_cell(res, name, mixture=True)
        rels += brels
        epochs = str(h[-1].get("epoch"))
        files = [f"`{history_rel(name)}`"]
        if res.exists(finetune_history_rel(name)):
            ft = res.history(finetune_history_rel(name))
            epochs += f" + {ft[-1].get('epoch')} (fine-tune)"
            files.append(f"`{finetune_history_rel(name)}`")
        if name.startswith("diffused-flows-") and res.exists(f"{RESULTS}/diffused-flows-two-stage/"
                                                             "stage1-glow-history.json"):
            s1 = res.history(f"{RESULTS}/diffused-flows-two-stage/stage1-glow-history.json")
            rels.append(f"{RESULTS}/diffused-flows-two-stage/stage1-glow-history.json")
            epochs = f"{s1[-1].get('epoch')} (glow) + {epochs} (end to end)"
        steps = recipe(res, name)
        if any(any(r.endswith("-train.json") or r.endswith("-refit.json") for r in st[2]) for st in steps):
            recipes.append(f"- {name}: " + "; then ".join(
                f"{what}: `{cmd}`" if cmd else f"{what}: (command not recorded)" for what, cmd, _ in steps))
            rels += [r for st in steps for r in st[2]]
        note = noise_note(res, name)
        if note:
            notes.append(note + ".")
        rows.append([name, bpd, epochs, ", ".join(files)])
    out = table(["model", "test bpd (mnist5k test split)", "epochs", "per-epoch numbers"], rows)
    out += ["", "Test bpd: that of the weights that ship, on the 1000 test images with seed 0's dequantization "
            "noise (exact for the flows): after a refit of the latent prior (`nfzoo refit-prior`) its result "
            "file's, with the bpd under the N(0, I) prior beside it; else the last epoch's of the fine-tune, or "
            "of the training run. For ddpm and diffused-flows an upper bound estimated with one random "
            "timestep per image, so it is reported as mean +- sd over seeds."] + [""] * bool(notes) + notes
    if recipes:
        out += ["", "How the shipped weights were made, each command from its file (a run's train.json, a "
                "refit's measured_by; a fine-tune's `--init` is the zoo model as it shipped before):", ""] + recipes
    return out + res.sources(rels)


def _share_once(docs: Sequence[Dict[str, Any]]) -> Tuple[str, List[str]]:
    """The recognisable column's header (the real test images' share beside it when every file has the same)
    and a note for files that disagree."""
    real = sorted({round(float(d["recognisable_real"]), 4) for d in docs
                   if isinstance(d.get("recognisable_real"), (int, float))})
    if len(real) == 1:
        return f"recognisable (real test images: {pct(real[0])})", []
    if not real:
        return "recognisable", []
    return "recognisable", ["", "The real test images' recognisable share differs between these files (oracles): "
                            + ", ".join(pct(r) for r in real) + "."]


def _nonfinite(d: Dict[str, Any]) -> str:
    """Non-finite samples over all seeds as "k / N"."""
    return f"{d.get('nonfinite_samples', 0)} / {d.get('n_samples', '-')}"


def _sample_source(s: Dict[str, Any], rel: str) -> str:
    """The source cell of a sample-quality row: the file, samples x seeds, when and at which commit."""
    mb = s["doc"].get(MEASURED_BY) or {}
    return (f"`{rel}` ({s['per_seed']} x {len(s['seeds'])}; {str(mb.get('date', '-'))[:10]}, "
            f"{short_commit(mb.get('commit'))})")


def b_samples(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """Sample quality: one row per docs/results/samples file (of one model when arg is given); the setting
    of the model's config.json "sampling" marked as the default."""
    files = res.sample_files(arg)
    if not files:
        where = f"{RESULTS}/samples/{arg}/" if arg else f"{RESULTS}/samples/"
        out = [f"No sample-quality result file under {where} yet: no number, no row. `nfzoo eval MODEL --dataset "
               "mnist5k --samples N --seeds S -t T [--sampler NAME] --out FILE` writes one (FILE: "
               "docs/results/samples/MODEL/SAMPLER-tT.json), and this table then has its row."]
        line = default_line(res, arg) if arg else None
        return out + ["", line] if line else out
    summaries = [(rel, sample_summary(res, rel)) for rel in files]
    defaults = {m: sampling_default(res, m)[1] for m in {s["model"] for _, s in summaries}}
    with_lr = any("label_reliability" in s["summary"] for _, s in summaries)
    recog, recog_note = _share_once([s["doc"] for _, s in summaries])
    rows, feats = [], []
    for rel, s in summaries:
        d, sm = s["doc"], s["summary"]
        f = d.get("oracle") if d.get("features", "oracle") == "oracle" else d.get("features")
        if str(f) not in feats:
            feats.append(str(f))
        label = sampler_label(d) + (" (the default)" if defaults.get(s["model"]) == rel else "")
        row = [label, f"{d.get('temperature', '-')}", pm(sm["fid"], 2), pm(sm.get("coverage"), 3),
               pm(sm.get("density"), 3), pm(sm.get("recognisable"), 1, True)]
        row += [pm(sm.get("label_reliability"), 1, True)] * with_lr + [_nonfinite(d), _sample_source(s, rel)]
        rows.append(([] if arg else [s["model"]]) + row)
    head = (([] if arg else ["model"]) + ["sampler", "T", "FID", "Coverage", "Density", recog]
            + ["label reliability"] * with_lr + ["non-finite samples", "source (samples x seeds; measured)"])
    out = table(head, rows)
    out += ["", "Each value is mean +- sd over the seeds (samples x seeds: samples per seed x seeds); FID, "
            "Coverage and Density (k = 5) against the 1000 test images in the features of "
            f"{' / '.join(feats)}; recognisable: the share of samples the oracle classifies with probability "
            ">= 0.9; non-finite samples (all seeds together) are left out of the other metrics. Compare FIDs "
            "only at the same sample count and features."] + recog_note
    lines = [default_line(res, m) for m in ([arg] if arg else
                                            [m for m in ORDER if m in defaults] + sorted(set(defaults) - set(ORDER)))]
    lines = [ln for ln in lines if ln]
    if lines:
        out += [""] + (lines if arg else [f"- {ln}" for ln in lines])
    out += ["", "Commands:", ""] + [f"- `{r}`: `{(res.json(r).get(MEASURED_BY) or {}).get('command', 'not recorded')}`"
                                    for r in files]
    return out


def b_zoo_defaults(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """Across the zoo: each model's default sampling setting (config.json "sampling") with its FID,
    recognisable share and non-finite samples, the model's test bpd, the worst non-finite count over all of
    the model's sample files; and real images in place of samples, for scale."""
    rows, rels, counts, undecided = [], [], set(), []
    names = [n for n in ORDER if n in index] + sorted(n for n in index if n not in ORDER)
    for name in names:
        if index[name].get("kind", "flow") != "flow":
            continue
        files = res.sample_files(name)
        sampling, rel = sampling_default(res, name)
        if rel is None:
            if files:
                undecided.append(name)
            continue
        s = sample_summary(res, rel)
        d, sm = s["doc"], s["summary"]
        counts.add(s["per_seed"])
        bpd, brels = bpd_cell(res, name, mixture=True) if res.exists(history_rel(name)) else ("-", [])
        worst = max(files, key=lambda r: res.json(r).get("nonfinite_samples", 0))    # the first of the most
        wd = res.json(worst)
        rows.append([name, f"{sampler_label(d)}, T={d.get('temperature')}", pm(sm["fid"], 2),
                     pm(sm.get("recognisable"), 1, True), _nonfinite(d), bpd,
                     f"{_nonfinite(wd)} ({Path(worst).stem}, of {len(files)} file(s))", f"`{rel}`"])
        rels += [rel] + brels
    if not rows:
        out = ["No zoo model has a measured default sampling setting yet (config.json \"sampling\" with its "
               "result file under docs/results/samples/): no number, no row. `python docs/results/samples/sweep.py` "
               "measures, `--choose` picks the defaults, and this table then has their rows."]
        return out + ([""] + [f"Measured, no default chosen yet: {', '.join(undecided)}."] if undecided else [])
    refs = [r for r in reference_files(res) if res.json(r).get("n_samples") in counts] or reference_files(res)
    real = None
    for r in refs:
        d = res.json(r)
        real = d.get("recognisable_real", real)
        rows.append([f"real images ({d['n_samples']} training images per seed, in place of samples)", "-",
                     pm(d["summary"]["fid"], 2), pm(d["summary"]["recognisable"], 1, True), "-", "-", "-", f"`{r}`"])
        rels.append(r)
    head = ["model", "default: sampler, T", "FID", "recognisable", "non-finite samples", "test bpd",
            "most non-finite samples over its files", "source"]
    out = table(head, rows)
    out += ["", "The default setting is the model's config.json \"sampling\" (what `model.sample` and `nfzoo "
            "sample` use when given no sampler, options or temperature), chosen by `docs/results/samples/sweep.py --choose`: "
            "the lowest mean FID among the settings without non-finite samples. FID (oracle-mnist5k features, "
            "against the 1000 test images) and the recognisable share (oracle probability >= 0.9) as mean +- sd "
            "over the file's seeds; compare a model's FID with the real-image row of its sample count"
            + (f"; the test images themselves are recognisable at {pct(real)}" if real is not None else "")
            + ". The last column: the most non-finite samples any of the model's sample files has (that file's "
            "name: sampler and temperature); the Sample quality table has every file."]
    if undecided:
        out += ["", f"Measured, no default chosen yet: {', '.join(undecided)}."]
    return out + res.sources(rels)


def b_recipe(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """The chain of commands that made a zoo model's shipped weights, each from its file."""
    steps = recipe(res, arg)
    if not steps:
        return [f"No training history of {arg} under {RESULTS}/: no recipe."]
    out = []
    for i, (what, cmd, rels) in enumerate(steps, 1):
        where = f" (`{rels[0]}`)" if rels else ""
        if rels and rels[0].endswith("-history.json") and cmd:
            where = f" (the run of `{rels[0]}`, as recorded when that file was committed)"
        out += [f"{i}. {what[0].upper() + what[1:]}{where}:", "",
                f"       {cmd}" if cmd else "       (the command is not recorded)", ""]
    if any(what == "fine-tune" for what, _, _ in steps):
        out += ["The fine-tune's `--init` names the zoo model as it shipped before the fine-tune.", ""]
    note = noise_note(res, arg)
    if note:
        out += [note + ".", ""]
    return out[:-1] + res.sources([r for _, _, rels in steps for r in rels])


def reference_files(res: Results) -> List[str]:
    """docs/results/real-reference/mnist5k-oracle-nN.json, by N."""
    files = (res.root / RESULTS / "real-reference").glob("mnist5k-oracle-n*.json")
    return [p.relative_to(res.root).as_posix()
            for p in sorted(files, key=lambda p: int(re.sub(r"\D", "", p.stem.rsplit("-n", 1)[1]) or 0))]


def b_real_reference(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """What real training images score in place of samples (one row per sample count): the scale of the
    sample metrics."""
    rows, rels = [], reference_files(res)
    if not rels:
        raise RenderError(f"no {RESULTS}/real-reference/mnist5k-oracle-nN.json: run "
                          "docs/results/real-reference/real_reference.py")
    for rel in rels:
        d = res.json(rel)
        s = d["summary"]
        rows.append([f"{d['n_samples']} real mnist5k training images", f"{d['n_samples']} x {len(d['seeds'])}",
                     pm(s["fid"], 2), pm(s["coverage"], 3), pm(s["density"], 3), pm(s["recognisable"], 1, True),
                     str(d.get("oracle"))])
    d = res.json(rels[0])
    out = table(["in place of samples", "samples x seeds", "FID", "Coverage", "Density", "recognisable",
                 "features"], rows)
    out += ["", f"Against the same 1000 test images (mean +- sd over draws of training images, one per seed); "
            f"the test images themselves are recognisable at {pct(d['recognisable_real'])}. Compare a model's "
            "row with the row of its sample count."]
    return out + res.sources(rels)


def b_oracle(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """The oracle's accuracy on the test split."""
    d = res.json(REFERENCE)
    acc = d["oracle_test_accuracy"]
    out = table(["metric", "value"],
                [["test accuracy (mnist5k test split, 1000 images)", f"{pct(acc)} ({round(acc * d['n_real'])} / "
                  f"{d['n_real']})"],
                 ["recognisable (largest softmax output >= 0.9) on the test split", pct(d["recognisable_real"])]])
    return out + res.sources([REFERENCE])


def _run_rows(h: List[Dict[str, Any]], prefix: str = "") -> List[List[str]]:
    """Rows of one run's history: test bpd at the end and at its best, train bpd, epochs, epoch time."""
    last = h[-1]
    best = min((r for r in h if isinstance(r.get("test_bpd"), (int, float))), key=lambda r: r["test_bpd"])
    rows = [[f"{prefix}test bpd (1000 test images, seeded dequantization, exact)", f"{last_tested(h)['test_bpd']:.4f}"],
            [f"{prefix}best test bpd during training (epoch)", f"{best['test_bpd']:.4f} ({best['epoch']})"]]
    return rows + _tail_rows(h, prefix)


def _tail_rows(h: List[Dict[str, Any]], prefix: str = "") -> List[List[str]]:
    """Train bpd, epochs and steps, epoch times of a history."""
    last, rows = h[-1], []
    secs = [r["seconds"] for r in h if isinstance(r.get("seconds"), (int, float))]
    if isinstance(last.get("train_bpd"), (int, float)):
        rows.append([f"{prefix}train bpd (last epoch, running mean)", f"{last['train_bpd']:.4f}"])
    rows.append([f"{prefix}epochs / optimizer steps", f"{last.get('epoch')} / {last.get('step')}"])
    if secs:
        rows.append([f"{prefix}epoch time: total (shortest - longest epoch)",
                     f"{sum(secs) / 60:.1f} min ({min(secs):.1f} - {max(secs):.1f} s)"])
    return rows


def b_training(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """One model's numbers from the chain of runs behind its shipped weights: the training run's history,
    a fine-tune's, a refit of the latent prior (the recipe block has their commands)."""
    rel = history_rel(arg)
    h = res.history(rel)
    rels, rows = [rel], []
    sh = None if is_bound(arg) else shipped(res, arg)
    if is_bound(arg):
        if not arg.startswith("ddpm-"):
            rows.append(["test bpd bound at the last epoch (seed 0, one timestep per image)",
                         f"{last_tested(h)['test_bpd']:.4f}"])
        rows += _tail_rows(h)
    elif sh["step"] == "training":
        rows += _run_rows(h)
    else:
        if sh["step"] == "refit":
            r = res.json(refit_rel(arg))
            rows += [["test bpd of the shipped weights (fitted latent prior; exact)", f"{sh['bpd']:.4f}"],
                     ["test bpd with the N(0, I) prior (before the refit)", f"{sh['before'][0]:.4f}"],
                     ["fitted latent prior: components / rank / fitted on", f"{r.get('components')} (by "
                      f"{r.get('by')}) / {r.get('rank')} / {r.get('images')} training images (seed {r.get('seed')})"]]
        if res.exists(finetune_history_rel(arg)):
            ft = res.history(finetune_history_rel(arg))
            rels.append(finetune_history_rel(arg))
            rows += _run_rows(ft, "fine-tune: ")
        rows += _run_rows(h, "training run: ")
        if sh["step"] == "refit":
            rels.append(refit_rel(arg))
    kl = [r["mean_pair_kl_per_dim"] for r in h if isinstance(r.get("mean_pair_kl_per_dim"), (int, float))]
    if kl:
        rows.append(["largest mean pairwise KL per class and dimension", f"{max(kl):.1f}"])
    out = table(["metric", "value"], rows)
    note = noise_note(res, arg)
    if note:
        out += ["", note + "."]
    return out + res.sources(rels)


def b_bound(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """A diffusion model's test bound over seeds."""
    s, seed0, rel = bound_doc(res, arg)
    out = table(["test bpd upper bound", "value"],
                [[f"mean +- sd over seeds {min(res.json(rel)['seeds'])}-{max(res.json(rel)['seeds'])} "
                  f"({s['n']} seeds)", pm(s, 3)], ["seed 0 (what `nfzoo eval` prints by default)", f"{seed0:.4f}"]])
    out += ["", "Each seed draws other dequantization noise, timesteps and diffusion noise (one timestep per "
            "image): the bound is an estimate; a single seed can fall below its expectation."]
    return out + res.sources([rel])


def b_trajectory(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """Latent RMS and the test bound at a few epochs of a diffusion model's training."""
    rel = history_rel(arg)
    h = {r["epoch"]: r for r in res.history(rel)}
    last = max(h)
    rows = [[str(e), num(h[e].get("latent_rms"), 2), num(h[e].get("test_bpd"), 3)]
            for e in sorted({1, 10, last // 2, last}) if e in h]
    return table(["epoch", "latent RMS", "test bound (bpd, seed 0)"], rows) + res.sources([rel])


GLEM_RUNS = (("glem-mnist5k (lambda 0.45 -> 0.25)", "glem-mnist5k"), ("lambda = 0", "glem-mnist5k-lambda0"))


def b_glem(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """GLEM and its lambda = 0 twin: NF-A and both bpds; the older single-seed sample metrics while they
    still describe the weights (the sample-quality files have the rest)."""
    rows, rels, legacy_rows, notes = [], [], [], []
    for label, name in GLEM_RUNS:
        g = glem_numbers(res, name)
        rels += [v[1] for v in g.values()]
        rows.append([label, pct(g["nf_a"][0]) if "nf_a" in g else "-", num(g.get("bpd", (None,))[0], 4),
                     num(g.get("mixture", (None,))[0], 4)])
        legacy = legacy_glem_eval(res, name)
        if legacy:
            d = res.json(legacy)

            def cell(key):
                c = d[key]
                return (f"{c['fid']:.2f} / {c['coverage']:.3f} / {pct(c['label_reliability'])} / "
                        f"{c['nonfinite_samples']}")
            legacy_rows.append([label, cell("t0.7"), cell("t1.0"), cell("rfcm-t0.7")])
            r = d["rfcm-t0.7"]
            notes.append(f"{pct(r['label_reliability'] * (1000 - r['nonfinite_samples']) / 1000)} ({label})")
    out = table(["model", "NF-A", "test bpd p(x given y)", "test bpd mixture p(x)"], rows)
    if legacy_rows:
        out += ["", "Sample quality measured with the evaluation above (one seed, seed 0):", ""]
        out += table(["model", "T=0.7 diagonal: FID / Cov. / L-R / non-finite",
                      "T=1.0 diagonal: FID / Cov. / L-R / non-finite", "T=0.7 RFCM: FID / Cov. / L-R / non-finite"],
                     legacy_rows)
        out += ["", "1000 samples per case (100 per class); FID and Coverage on oracle-mnist5k features against "
                "the 1000 test images; L-R (label reliability): the oracle's accuracy on the samples; non-finite "
                "samples (the flow's inverse overflowing) are left out of the metrics. Counting them as wrong, "
                "the RFCM label reliability at T=0.7 would be " + " and ".join(notes) + "."]
    return out + res.sources(rels)


def b_bench_diffusion(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """`nfzoo bench diffusion`: FID, Coverage and time per case (one run, seed 0)."""
    rows = []
    for r in bench_rows(res, BENCH_DIFFUSION):
        rows.append([r["case"], str(r.get("n_samples")), str(r.get("nonfinite", 0)), num(r.get("fid_common"), 2),
                     num(r.get("fid"), 2), num(r.get("coverage"), 3), num(r["candidate_s"], 2),
                     f"{r['ratio']:.1f}x", num(r.get("fid_ratio"), 2)])
    out = table(["case", "samples", "non-finite", "FID (first 200)", "FID (all)", "Coverage",
                 "s / 100 samples", "speed-up vs ddpm ancestral", "FID (first 200) / ddpm ancestral's"], rows)
    out += ["", "One run, one seed (seed 0): the spread over seeds is in the next table. FID and Coverage (k = 5, "
            "all samples) on oracle-mnist5k features against the 1000 test images; the full-T ancestral cases "
            "drew 200 samples, the others 500, so \"FID (first 200)\" is the one to compare across cases. \"ddim "
            "S\" is deterministic DDIM (eta = 0), \"eta=1\" the ancestral sampler over the same S steps."]
    return out + res.sources([BENCH_DIFFUSION])


def b_fid_seeds(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """FID over sampling seeds for ddpm and diffused-flows, and their ratio to ddpm's ancestral mean."""
    fs = fid_seeds(res)
    anc = fs.get(("ddpm-mnist5k", "ddpm", 1000, 0.0))
    if anc is None:
        raise RenderError(f"{FID_SEEDS} lacks the ddpm ancestral line (the ratios' reference)")
    commits = {v["block"] for v in fs.values()}
    newest = block_commit(list(fs.values())[-1]["block"])

    def cell(v):
        if v is None:
            return "-"
        c = block_commit(v["block"])
        return pm(v["summary"], 2) + (f" (at {c})" if len(commits) > 1 and c != newest else "")
    rows, rels = [], [FID_SEEDS]
    df_anc = [r for r in bench_rows(res, BENCH_DIFFUSION) if r["case"] == "diffused-flows ancestral T=1000"]
    if df_anc:
        rels.append(BENCH_DIFFUSION)
        f0 = df_anc[0]["fid_common"]
        rows.append(["ancestral T=1000", cell(anc), f"{f0:.2f} (1 seed, seed 0: {BENCH_DIFFUSION})",
                     f"{f0 / anc['summary']['mean']:.2f}x (1 seed)"])
    for eta in (1.0, 0.0):
        for steps in (50, 20, 10):
            dd, df = fs.get(("ddpm-mnist5k", "ddim", steps, eta)), fs.get(("diffused-flows-mnist5k", "ddim",
                                                                            steps, eta))
            ratio = f"{df['summary']['mean'] / anc['summary']['mean']:.2f}x" if df else "-"
            rows.append([f"DDIM {steps} steps, eta {eta:g}", cell(dd), cell(df), ratio])
    out = table(["sampler", "ddpm-mnist5k", "diffused-flows-mnist5k", "diffused-flows / ddpm ancestral's mean"],
                rows)
    out += ["", f"FID (200 samples, oracle-mnist5k features, against the 1000 test images), mean +- sd over "
            f"sampling seeds 0-{anc['summary']['n'] - 1} ({anc['summary']['n']} seeds); a cell marked \"at "
            "COMMIT\" comes from an earlier block of the file (the same ddpm weights)."]
    return out + res.sources(rels)


def b_objectives(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """Diffused-Flows' objectives on mnist5k with the shallow glow: bound, FID over seeds, latent RMS."""
    fs = fid_seeds(res)
    runs = [("two-stage (the zoo model at b017ba1)", f"{RESULTS}/diffused-flows-two-stage/history.json",
             "diffused-flows-mnist5k(two-stage, archived)"),
            ("elbo (the bound trains flow and U-Net; stopped)", f"{RESULTS}/diffused-flows-e2e/"
             "elbo-from-shallow-flow-history.json", None),
            ("hybrid (flow: the bound; U-Net: the simple loss)", f"{RESULTS}/diffused-flows-e2e/"
             "hybrid-from-shallow-flow-history.json", None),
            ("hybrid, 120 epochs (the zoo model since e75f00c)", history_rel("diffused-flows-mnist5k"),
             "diffused-flows-mnist5k")]
    rows, rels = [], [FID_SEEDS]
    for label, rel, key in runs:
        h = res.history(rel)
        rels.append(rel)
        by = {r["epoch"]: r for r in h}
        rms = " -> ".join(num(by[e].get("latent_rms"), 2) for e in sorted({1, 10, h[-1]["epoch"]}) if e in by)
        fids = [fs.get((key, "ddim", s, 0.0)) for s in (10, 20, 50)] if key else [None] * 3
        fid = " / ".join(pm(f["summary"], 1) if f else "-" for f in fids) if key else "not measured"
        rows.append([label, str(h[-1]["epoch"]), num(last_tested(h)["test_bpd"], 3), fid, rms])
    out = table(["objective", "epochs", "test bound (bpd, seed 0)", "DDIM 10 / 20 / 50 FID (eta 0, 200 samples, "
                 "mean +- sd over 5 seeds)", "latent RMS, epoch 1 -> 10 -> last"], rows)
    return out + res.sources(rels)


def b_glow_lr(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """glow-mnist5k's cosine schedule against the same Glow at a constant learning rate."""
    const_rel, zoo_rel = f"{RESULTS}/glow-mnist5k-constant-lr-history.json", history_rel("glow-mnist5k")
    const, zoo = res.history(const_rel), {r["epoch"]: r for r in res.history(zoo_rel)}
    e = const[-1]["epoch"]
    rows = [["constant learning rate", str(e), num(const[-1].get("test_bpd"), 4), "-"],
            ["cosine decay (glow-mnist5k's training run)", str(e), num(zoo.get(e, {}).get("test_bpd"), 4),
             f"{last_tested(list(zoo.values()))['test_bpd']:.4f} (epoch {max(zoo)})"]]
    return table(["learning rate", "epoch", "test bpd at that epoch", "final"], rows) + res.sources(
        [const_rel, zoo_rel])


def b_heads_cnn_a(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """CNN-A: a ResNet-18 trained on generated images against the same recipe on real ones."""
    rel = f"{RESULTS}/heads/cnn-a-glem-mnist5k.json"
    d = res.json(rel)
    rows = [[f"{d['cnn_a']['train_images']} {d['sampler']} samples of {d['model']} (T={d['temperature']:g}; "
             f"{d['redrawn_nonfinite']} non-finite samples redrawn)", pct(d["cnn_a"]["test_accuracy"]),
             str(d["cnn_a"]["seed"])],
            [f"{d['real']['train_images']} real training images", pct(d["real"]["test_accuracy"]),
             str(d["real"]["seed"])]]
    out = table(["ResNet-18 trained on", f"accuracy on the {d['test_images']} real test images", "seed"], rows)
    out += ["", f"{d['cnn_a']['epochs']} epochs each, one seed each (no spread measured)."]
    return out + res.sources([rel])


def b_heads_anonymize(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """The anonymization study: oracle accuracy and PSNR in the hidden box per fill."""
    rel = f"{RESULTS}/heads/anonymize-ddpm-mnist5k.json"
    d = res.json(rel)
    labels = {"original": "none (the original images)", "constant-black": "constant black",
              "constant-gray": "constant gray",
              "blur": f"Gaussian blur, sigma {d.get('blur_sigma', 3):g} (of the hidden pixels themselves)",
              "inpaint": f"{d['model']} RePaint-style, one draw",
              "inpaint-mean-3": f"{d['model']}, mean of {d.get('average', 3)} draws"}
    rows = [[labels.get(k, k), pct(v.get("oracle_accuracy")), num(v.get("psnr_box_db"), 2),
             {True: "yes", False: "NO", None: "-"}[v.get("kept_pixels_unchanged")]] for k, v in d["rows"].items()]
    box = d.get("box")
    out = table(["fill of the hidden box", "oracle accuracy (class kept)",
                 "PSNR in the box vs the hidden pixels (dB)", "kept pixels unchanged"], rows)
    out += ["", f"All {d['images']} test images, box {box} hidden; one seed ({d.get('seed')}); oracle: "
            f"{d.get('oracle')}."]
    return out + res.sources([rel])


def b_heads_ood(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """Anomaly scores: AUROC of bpd and typicality against the test split."""
    rels = [f"{RESULTS}/heads/ood-glow-mnist5k.json", f"{RESULTS}/heads/ood-ddpm-mnist5k-repeats1.json",
            f"{RESULTS}/heads/ood-ddpm-mnist5k.json"]
    rows = []
    for rel in rels:
        d = res.json(rel)
        est = d.get("repeats", 1)
        label = f"{d['model']} ({'exact bpd' if not is_bound(d['model']) else f'{est} bound estimate(s) per image'})"
        for name, r in d["rows"].items():
            rows.append([label, name, f"{r['auroc_bpd']:.3f}", f"{r['auroc_typicality']:.3f}",
                         f"{r['mean_bpd']:.1f} vs {d['mean_bpd_test']:.2f}"])
    out = table(["model", "outliers (1000 images)", "AUROC bpd", "AUROC typicality",
                 "mean bpd: outliers vs test split"], rows)
    missing = sorted({k for rel in rels for k in (res.json(rel).get("missing") or {})})
    if missing:
        out += ["", "Not measured (not on this machine): " + ", ".join(missing) + "."]
    return out + res.sources(rels)


def b_heads_augment(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """Latent augmentation against standard augmentation, over seeds."""
    rel = f"{RESULTS}/heads/augment-glow-mnist5k.json"
    d = res.json(rel)
    labels = {"standard": "standard (random affine)",
              "latent": f"latent ({d.get('mode')} through {d['model']}, p = {d.get('p')}, no affine)"}
    rows = [[labels.get(k, k), pm(mean_sd(v["test_accuracy"]), 2, True), str(len(v["test_accuracy"]))]
            for k, v in d["arms"].items()]
    out = table(["augmentation", "test accuracy, mean +- sd", "seeds"], rows)
    out += ["", f"ResNet-18 on the 4000 training images, {d['recipe']['epochs']} epochs, seeds "
            f"{', '.join(map(str, d['seeds']))}."]
    return out + res.sources([rel])


def b_bench_train(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """`nfzoo bench train`: nfzoo against normflows."""
    rel = f"{RESULTS}/bench-train.json"
    r = bench_rows(res, rel)[0]
    rows = [[r["candidate"], f"{r['candidate_images_per_s']:.0f}", f"{r['candidate_test_bpd']:.3f}",
             f"{r['candidate_params']:,}"],
            [r["baseline"], f"{r['baseline_images_per_s']:.0f}", f"{r['baseline_test_bpd']:.3f}",
             f"{r['baseline_params']:,}"]]
    out = table(["library", "images / s", "test bpd after the run", "parameters"], rows)
    out += ["", f"{r['case']}; ratio of the mean times {r['ratio']:.2f} (nfzoo / normflows speed); one run. The "
            "file's notes give the setting (the median ratio, the optimiser, the split priors)."]
    return out + res.sources([rel])


def _solve_case(case: str) -> Tuple[str, str, str]:
    m = re.match(r"solve (\d+x\d+), C=(\d+), batch (\d+)", case)
    return (m.group(1), m.group(2), m.group(3)) if m else (case, "", "")


def b_bench_cinc(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """`nfzoo bench cinc` on the CPU: the wavefront solve against the sequential and the dense solve."""
    rel = f"{RESULTS}/bench-cinc.json"
    cases: Dict[str, Dict[str, Any]] = {}
    extra = []
    for r in bench_rows(res, rel):
        if not r["case"].startswith("solve"):
            extra.append(f"{r['case']}: {r['baseline']} {r['baseline_s']:.3f} s, {r['candidate']} "
                         f"{r['candidate_s']:.3f} s.")
            continue
        c = cases.setdefault(r["case"], {"wavefront": r["candidate_s"]})
        c[r["baseline"]] = r["baseline_s"]
    rows = []
    for case, c in cases.items():
        img, ch, _ = _solve_case(case)
        seq, dense, wf = c.get("sequential"), c.get("dense solve_triangular"), c["wavefront"]
        rows.append([img, ch, num(seq, 3), num(dense, 4), num(wf, 4), f"{seq / wf:.0f}x" if seq else "-",
                     f"{dense / wf:.2g}x" if dense else "-"])
    out = table(["image", "C", "sequential s", "dense s", "wavefront s", "vs sequential", "vs dense"], rows)
    out += ["", f"Batch 16, one run; {res.json(rel)['device']}; \"-\": not run (the dense operator would "
            "need more than 0.6 GB)."] + [""] * bool(extra) + extra
    return out + res.sources([rel])


def _sampling_table(res: Results, rels: Sequence[str], labels: Sequence[str]) -> List[str]:
    """Times per (case, model) of `nfzoo bench sampling` documents, one column per document."""
    cols: List[Dict[Tuple[str, str], float]] = []
    order: List[Tuple[str, str]] = []
    for rel in rels:
        t: Dict[Tuple[str, str], float] = {}
        for r in bench_rows(res, rel):
            for who, s in ((r["baseline"], r["baseline_s"]), (r["candidate"], r["candidate_s"])):
                t[(r["case"], who)] = s
                if (r["case"], who) not in order:
                    order.append((r["case"], who))
        cols.append(t)
    rows = [[case, who] + [f"{1000 * c[(case, who)]:.1f} ms" if (case, who) in c else "-" for c in cols]
            for case, who in order]
    return table(["case", "model"] + list(labels), rows)


def b_bench_sampling(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """`nfzoo bench sampling` on the CPU."""
    rel = f"{RESULTS}/bench-sampling.json"
    out = _sampling_table(res, [rel], [res.json(rel)["device"]])
    out += ["", "Random init, equal depth and width (affine coupling and LU 1x1 conv in all); one run. "
            "\"sequential, published\" is cinc-flow inverted by the original code's back-substitution."]
    return out + res.sources([rel])


def b_gpu_cinc(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """`nfzoo bench cinc --device cuda`: the Triton kernel against the torch wavefront on the GPU."""
    rel = f"{RESULTS}/gpu/run2/bench-cinc-cuda.json"
    cases: Dict[str, Dict[str, Any]] = {}
    for r in bench_rows(res, rel):
        c = cases.setdefault(r["case"], {"dot": r["candidate_s"]})
        c[r["baseline"]] = r["baseline_s"]
        if "max_abs_diff_vs_float64" in r:
            c["diff"] = r["max_abs_diff_vs_float64"]
    rows = []
    for case, c in cases.items():
        img, ch, batch = _solve_case(case)
        tw, fma = c.get("torch wavefront (cuda)"), c.get("triton kernel, fma form")
        rows.append([img, ch, batch, num(tw and 1000 * tw, 2), num(fma and 1000 * fma, 2), num(1000 * c["dot"], 2),
                     f"{tw / fma:.1f}x" if tw and fma else "-", f"{c['diff']:.0e}" if "diff" in c else "-"])
    out = table(["image", "C", "batch", "torch wavefront (ms)", "Triton, fma form: the default (ms)",
                 "Triton, tl.dot form (ms)", "default vs torch wavefront", "max abs diff vs float64"], rows)
    out += ["", f"{res.json(rel)['device']}; best of 5, interleaved."]
    return out + res.sources([rel])


def b_gpu_sampling(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """`nfzoo bench sampling --device cuda`, both GPU runs."""
    rels = [f"{RESULTS}/gpu/run1/bench-sampling-cuda.json", f"{RESULTS}/gpu/run2/bench-sampling-cuda.json"]
    out = _sampling_table(res, rels, ["run1", "run2"])
    out += ["", f"{res.json(rels[1])['device']}, the same machine for both runs; the difference between the runs "
            "is the spread of one GPU's timings from one call to the next."]
    return out + res.sources(rels)


def b_gpu_tests(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """The summary line of the CUDA test runs."""
    rels = [f"{RESULTS}/gpu/run1/pytest-cuda.log", f"{RESULTS}/gpu/run2/pytest-cuda.log"]
    rows = []
    for rel in rels:
        lines = [ln for ln in res.text(rel).splitlines() if re.search(r"\d+ (passed|failed)", ln)]
        rows.append([rel.split("/")[-2], f"`{lines[-1].strip(' =')}`" if lines else "-"])
    return table(["run", "`pytest -k cuda` (cinc and inverse-flow tests)"], rows) + res.sources(rels)


def b_bench_scaling(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """`nfzoo bench scaling`: training images/s, CPU processes and GPU precision."""
    rels = [f"{RESULTS}/bench-scaling-cpu.json", f"{RESULTS}/gpu/run2/bench-scaling-cuda.json"]
    rows = []
    for rel in rels:
        for r in bench_rows(res, rel):
            rows.append([r["case"], r["baseline"], f"{r['images_per_s_baseline']:,.0f}", r["candidate"],
                         f"{r['images_per_s_candidate']:,.0f}", f"{r['ratio']:.2f}",
                         f"{r['test_bpd_baseline']:.3f} / {r['test_bpd_candidate']:.3f}"])
    out = table(["case", "baseline", "images / s", "candidate", "images / s", "ratio", "test bpd after the run"],
                rows)
    out += ["", "The last epoch of real `nfzoo train` runs, one run each."]
    return out + res.sources(rels)


PAPER_TABLES = (   # docs/results/papers/<stem>.json: the issue-25 scripts' outputs, in the README's order
    ("table1_glem_baselines", "GLEM Tables 1-2: GLEM against lambda = 0, CE and CEGLEM"),
    ("table2_glem_lambda", "GLEM Table 3: the lambda sweep"),
    ("table3_glem_table5_temperature", "GLEM Table 5: temperature and RFCM"),
    ("table4_glem_table4_cnn_a", "GLEM Table 4: CNN-A against the number of generated images"),
    ("table5_glem_augment", "GLEM Table 9: latent augmentation added to the standard one"),
    ("table6_glem_as_paper", "GLEM as the paper has it: gaussians on the whole latent, EM through training"),
    ("table7_diffused_flows_table5_4", "Diffused-Flows Table 5.4: FID, sampling time, NLL"),
    ("table8_sampling_time", "Sampling time: FInC, CInC, Glow, Inverse-Flow"),
)


def _claims(d: Dict[str, Any]) -> List[Tuple[str, str, str]]:
    """(claim, label, what we observed) of a paper table's JSON, whichever of the scripts' two shapes."""
    raw = d.get("claims")
    if raw is None and isinstance(d.get("claim"), dict):        # table5: one claim, its text in the paper field
        c = d["claim"]
        diff = d.get("paired_difference") or {}
        sm = diff.get("summary") or {}
        seen = (f"standard + latent minus standard, same seed: {100 * sm['mean']:+.2f} +- {100 * sm['sd']:.2f} "
                f"points over seeds {diff.get('seeds')}" if sm.get("mean") is not None else "pending")
        raw = [{"claim": "latent augmentation added to the standard one beats the standard one alone",
                "label": c["label"], "observed": seen}]
    out = []
    for c in raw or []:
        label = c.get("label") or c.get("verdict")
        seen = c.get("observed") or c.get("ours")
        out.append((str(c["claim"]), str(label), str(seen)))
    return out


def b_papers_fidelity(res: Results, arg: Optional[str], index: Dict[str, Any]) -> List[str]:
    """One line per claim of the papers' tables (issue 25), from the JSON each script wrote."""
    out: List[str] = []
    rels: List[str] = []
    for stem, title in PAPER_TABLES:
        rel = f"{RESULTS}/papers/{stem}.json"
        link = f"[{title}](docs/results/papers/{stem}.md)"
        if not res.exists(rel):
            out.append(f"- {link}: not measured yet (`python docs/results/papers/{stem}.py`).")
            continue
        rels.append(rel)
        d = res.json(rel)
        claims = _claims(d)
        if not claims and stem == "table6_glem_as_paper":
            rows = d.get("against_reference") or {}
            algo = next((k for k in rows if "em1" in k and "all" in k and "lam" not in k), None)
            dd = rows.get(algo) or {}
            if dd.get("nf_a") is None:
                out.append(f"- {link}: runs pending.")
                continue
            out.append(f"- {link}: no claim of the paper's to label; Algorithm 1 as printed (gaussians "
                       f"on all 784 dims, EM all 24 epochs) against the zoo's design: NF-A {dd['nf_a']:+.1f} "
                       f"points, L-R {dd['l_r']:+.1f} points, FID {dd['fid']:+.2f}, bpd {dd['bpd']:+.3f}.")
            continue
        out.append(f"- {link}:")
        out += [f"  - {claim}: **{label}** ({seen})" for claim, label, seen in claims]
    return out + res.sources(rels)


BLOCKS: Dict[str, Callable[[Results, Optional[str], Dict[str, Any]], List[str]]] = {
    "zoo-training": b_zoo_training, "samples": b_samples, "zoo-defaults": b_zoo_defaults, "recipe": b_recipe,
    "real-reference": b_real_reference,
    "oracle": b_oracle, "training": b_training, "bound": b_bound, "trajectory": b_trajectory,
    "glem": b_glem, "bench-diffusion": b_bench_diffusion, "fid-seeds": b_fid_seeds,
    "diffused-flows-objectives": b_objectives, "glow-lr-schedule": b_glow_lr, "heads-cnn-a": b_heads_cnn_a,
    "heads-anonymize": b_heads_anonymize, "heads-ood": b_heads_ood, "heads-augment": b_heads_augment,
    "bench-train": b_bench_train, "bench-cinc": b_bench_cinc, "bench-sampling": b_bench_sampling,
    "gpu-cinc": b_gpu_cinc, "gpu-sampling": b_gpu_sampling, "gpu-tests": b_gpu_tests,
    "bench-scaling": b_bench_scaling, "papers-fidelity": b_papers_fidelity,
}
NEEDS_MODEL = ("training", "bound", "trajectory", "oracle", "recipe")


# ------------------------------------------------------------------------------------------ metrics
def _put(out: Dict[str, Any], key: str, s: Dict[str, float], nd: int, labels: Optional[Dict[str, str]] = None,
         label: str = "") -> None:
    """A stochastic metric into an index entry: KEY (mean), KEY_sd (when over several seeds) and KEY_seeds; its
    description (with the source) into `labels`."""
    out[key] = round(s["mean"], nd)
    if s["n"] > 1:
        out[key + "_sd"] = round(s["sd"], nd)
    out[key + "_seeds"] = s["n"]
    if labels is not None:
        spread = f"mean over {s['n']} seeds, sd {round(s['sd'], nd)}" if s["n"] > 1 else "1 seed"
        labels[key] = f"{label} ({spread})"


def model_metrics(res: Results, name: str, entry: Dict[str, Any],
                  labels: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """The "metrics" of a zoo entry, all from result files (nothing for a model without them); `labels`, when
    given, receives a description of each key that names its file."""
    out: Dict[str, Any] = {}
    labels = {} if labels is None else labels
    if entry.get("kind") == "oracle":
        if name == "oracle-mnist5k" and res.exists(REFERENCE):
            out["test_accuracy"] = round(res.json(REFERENCE)["oracle_test_accuracy"], 4)
            labels["test_accuracy"] = f"test accuracy on the 1000 mnist5k test images; source {REFERENCE}"
        return out
    hist = history_rel(name)
    if res.exists(hist):
        h = res.history(hist)
        if is_bound(name):
            s, seed0, brel = bound_doc(res, name)
            out["test_bpd_bound"] = round(seed0, 4)
            labels["test_bpd_bound"] = f"test bpd upper bound, seed 0; source {brel}"
            _put(out, "test_bpd_bound_mean", s, 4, labels, f"test bpd upper bound (dequantized, 8-bit term "
                 f"included, one timestep per image); source {brel}")
        else:
            sh = shipped(res, name)
            what = {"refit": "; the shipped weights, with the fitted latent prior", "finetune": "; after the "
                    "fine-tune", "training": ""}[sh["step"]]
            if noise_sigma(res, name) > 0:
                what += f"; clean test images (trained on data + N(0, {noise_sigma(res, name):g}^2) noise)"
            out["test_bpd"] = round(sh["bpd"], 4)
            labels["test_bpd"] = f"test bits per dimension (dequantized, 8-bit term included{what}); source {sh['rel']}"
            if sh["before"]:
                out["test_bpd_normal_prior"] = round(sh["before"][0], 4)
                labels["test_bpd_normal_prior"] = (f"test bpd with the N(0, I) prior, before the refit; source "
                                                   f"{refit_rel(name)}")
        out["epochs"] = h[-1].get("epoch")
        if res.exists(finetune_history_rel(name)):
            out["finetune_epochs"] = res.history(finetune_history_rel(name))[-1].get("epoch")
    if name.startswith("glem-"):
        g = glem_numbers(res, name)
        if "mixture" in g:
            out["test_bpd_mixture"] = round(g["mixture"][0], 4)
            labels["test_bpd_mixture"] = f"test bpd of the class mixture p(x); source {g['mixture'][1]}"
        if "nf_a" in g:
            out["nf_a"] = round(g["nf_a"][0], 4)
            labels["nf_a"] = f"NF-A, argmax_y log p(x | y), on the 1000 test images; source {g['nf_a'][1]}"
        grel = legacy_glem_eval(res, name)
        for key, stem, what in ((("t0.7", "ancestral_t0.7", "diagonal gaussians, T=0.7"),
                                 ("t1.0", "ancestral_t1.0", "diagonal gaussians, T=1.0"),
                                 ("rfcm-t0.7", "rfcm_t0.7", "RFCM, T=0.7")) if grel else ()):
            for m, nd, mname in (("fid", 2, "FID (oracle-mnist5k features)"), ("coverage", 3, "Coverage"),
                                 ("label_reliability", 4, "label reliability")):
                _put(out, f"{'fid_oracle' if m == 'fid' else m}_{stem}", mean_sd([res.json(grel)[key][m]]), nd,
                     labels, f"{mname} of 1000 samples, {what}; source {grel}")
    if is_bound(name) and res.exists(FID_SEEDS):
        for (model, sampler, steps, eta), v in fid_seeds(res).items():
            if model == name:
                kind = "ancestral" if sampler == "ddpm" else f"ddim{steps}" + ("_eta1" if eta == 1 else "")
                what = "the ancestral sampler, T=1000" if sampler == "ddpm" else f"DDIM {steps} steps, eta {eta:g}"
                _put(out, f"fid_oracle_{kind}_n200", v["summary"], 2, labels,
                     f"FID (oracle-mnist5k features) of 200 samples, {what}; source {FID_SEEDS}")
        key = "fid_oracle_ancestral_n200"
        if key not in out:
            for r in bench_rows(res, BENCH_DIFFUSION):
                if r["case"] == f"{name.split('-mnist5k')[0]} ancestral T=1000":
                    _put(out, key, mean_sd([r["fid_common"]]), 2, labels, "FID (oracle-mnist5k features) of "
                         f"200 samples, the ancestral sampler, T=1000; source {BENCH_DIFFUSION}")
    for rel in res.sample_files(name):
        s = sample_summary(res, rel)
        stem = stem_key(rel)
        d = s["doc"]
        out[f"nonfinite_samples_{stem}"] = int(d.get("nonfinite_samples", 0))
        labels[f"nonfinite_samples_{stem}"] = f"non-finite samples of {d.get('n_samples')} (all seeds); source {rel}"
        feats = d.get("features", "oracle")
        for m, v in s["summary"].items():
            key = (f"fid_{'oracle' if feats == 'oracle' else re.sub(r'[^a-z0-9]+', '_', str(feats))}"
                   if m == "fid" else m)
            _put(out, f"{key}_{stem}", v, 2 if m == "fid" else 4, labels,
                 f"{m} of {s['per_seed']} samples per seed, {sampler_label(d)}, T={d.get('temperature')}, "
                 f"{feats} features; source {rel}")
    return out


def stem_key(rel: str) -> str:
    """The suffix of a sample-quality file's metric keys in the index: "ddim50-eta1-t1.0" -> "ddim50_eta1_t1.0"."""
    return re.sub(r"[^a-z0-9.]+", "_", Path(rel).stem.lower())


def sample_metric_keys(res: Results, name: str, metrics: Dict[str, Any]) -> Dict[str, str]:
    """The keys of `metrics` that come from sample-quality files -> their file."""
    out = {}
    for rel in res.sample_files(name):
        stem = stem_key(rel)
        for key in metrics:
            if key.endswith("_" + stem):
                out[key] = rel
    return out


# number patterns of index descriptions: (regex with one group, metric key, format)
DESCRIPTION_NUMBERS = [
    (r"\(test bpd (\d+\.\d+)\)", "test_bpd", lambda v: f"{v:.3f}"),
    (r"\((\d+\.\d+)% test accuracy\)", "test_accuracy", lambda v: f"{100 * v:.1f}"),
    (r"NF-A (\d+\.\d+)%", "nf_a", lambda v: f"{100 * v:.1f}"),
    (r"label reliability (\d+\.\d+)% at T=0\.7", "label_reliability_rfcm_t0.7", lambda v: f"{100 * v:.1f}"),
]


def describe(description: Optional[str], metrics: Dict[str, Any]) -> Optional[str]:
    """The description with the numbers DESCRIPTION_NUMBERS knows taken from the metrics (a number whose
    metric is gone is a RenderError: say it without the number)."""
    if not description:
        return description
    for pattern, key, fmt in DESCRIPTION_NUMBERS:
        m = re.search(pattern, description)
        if m:
            if key not in metrics:
                raise RenderError(f"the description {description!r} gives {key}, which no result file backs")
            description = description[:m.start(1)] + fmt(metrics[key]) + description[m.end(1):]
    return description


# ------------------------------------------------------------------------------------------ documents
def render_text(res: Results, text: str, where: str, index: Dict[str, Any]) -> str:
    """The text with every generated block rendered again."""
    def md(m: re.Match) -> str:
        return m.group(1) + "\n" + "\n".join(render_block(res, m.group("id"), where, index)) + "\n\n" + m.group(4)

    def yaml(m: re.Match) -> str:
        return m.group(1) + "\n".join(model_index(res, m.group("id").split(":", 1)[1], index)) + "\n" + m.group(4)
    return YAML_BLOCK.sub(yaml, MD_BLOCK.sub(md, text))


def render_block(res: Results, block_id: str, where: str, index: Dict[str, Any]) -> List[str]:
    """The lines of one block (`ID` or `ID:MODEL`)."""
    name, _, arg = block_id.partition(":")
    if name not in BLOCKS:
        raise RenderError(f"{where}: unknown generated block {block_id!r} (known: {', '.join(sorted(BLOCKS))})")
    if name in NEEDS_MODEL and not arg:
        raise RenderError(f"{where}: block {name!r} needs a model: {name}:MODEL")
    return BLOCKS[name](res, arg or None, index)


def model_index(res: Results, name: str, index: Dict[str, Any]) -> List[str]:
    """A card's YAML `metrics:` list and `model-index:`, each value named with its source file: the accuracies,
    the test bpd (of the shipped weights; a diffusion model's bound), and of the sample-quality files the
    default setting's (config.json "sampling") FID and recognisable share (means); a model without a default
    keeps the FIDs and label reliabilities of its older files (the GLEM evaluation, the diffusion FID seeds)."""
    entry = index.get(name)
    if entry is None:
        raise RenderError(f"model-index:{name}: {name} is not in the zoo index")
    labels: Dict[str, str] = {}
    m = model_metrics(res, name, entry, labels)
    from_files = sample_metric_keys(res, name, m)
    _, default_rel = sampling_default(res, name)
    chosen = set()
    if default_rel:
        stem = stem_key(default_rel)
        chosen = {k for k in m if k.startswith(("fid_", "recognisable_")) and k.endswith("_" + stem)}
    items: List[Tuple[str, str, Any, str]] = []   # (task, type, value, name)
    for key in m:
        if key.endswith(("_sd", "_seeds")) or key in ("test_bpd_bound", "test_bpd_normal_prior"):
            continue
        if key in from_files:     # sample files: the default setting's FID and recognisable share only
            if key in chosen:
                typ = "fid" if key.startswith("fid") else "recognisable"
                items.append(("image-generation", typ, m[key], labels[key] + " (the default setting)"))
            continue
        if key in ("test_accuracy", "nf_a"):
            items.append(("image-classification", "accuracy", m[key], labels[key]))
        elif key.startswith("test_bpd"):
            items.append(("image-generation", "bpd", m[key], labels[key]))
        elif not default_rel and (key.startswith("fid_") or key.startswith("label_reliability_")):
            items.append(("image-generation", key.split("_")[0] if key.startswith("fid") else "label_reliability",
                          m[key], labels[key]))
    if not items:
        return []
    tasks = {"image-classification": "classification", "image-generation": "density estimation and generation"}
    lines = ["metrics:"] + [f"- {t}" for t in sorted({i[1] for i in items})]
    lines += ["model-index:", f"- name: {name}", "  results:"]
    for task in tasks:
        group = [i for i in items if i[0] == task]
        if not group:
            continue
        lines += ["  - task:", f"      type: {task}", f"      name: {tasks[task]}", "    dataset:",
                  "      name: mnist5k (test split, 1000 images)", "      type: mnist5k", "      split: test",
                  "    metrics:"]
        for _, typ, value, label in group:
            lines += [f"    - type: {typ}", f"      value: {value}", f"      name: {json.dumps(label)}"]
    return lines


def _diff(old: str, new: str, path: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{path}", f"b/{path}"))


def render(root: Path = ROOT, write: bool = True) -> Tuple[List[str], List[str]]:
    """Render README.md, the zoo cards and the index's metrics under `root` from its docs/results. With
    write=True the files that differ are rewritten (cards first, then their pins); with write=False nothing
    is written. All or nothing: every text and the index are rendered before anything is written, so a
    RenderError leaves every file as it was (a card rewritten without its pin would not load). Returns
    (unified diffs of what differed, warnings)."""
    root = Path(root)
    res = Results(root)
    index_path = root / "zoo" / "nfzoo_zoo" / "index.json"
    index_doc = json.loads(index_path.read_text())
    models = index_doc.get("models", {})
    diffs: List[str] = []
    docs = [root / "README.md"] + sorted((root / "zoo" / "nfzoo_zoo" / "models").glob(f"*/{CARD_NAME}"))
    rendered = {}
    for path in docs:
        old = path.read_text()
        new = render_text(res, old, path.relative_to(root).as_posix(), models)
        if new != old:
            diffs.append(_diff(old, new, path.relative_to(root).as_posix()))
            rendered[path] = new
    new_index = json.loads(json.dumps(index_doc))
    for name, entry in new_index.get("models", {}).items():
        entry["metrics"] = model_metrics(res, name, entry)
        entry["description"] = describe(entry.get("description"), entry["metrics"])
    if write:
        for path, new in rendered.items():
            atomic_write_bytes(path, new.encode())
    for name, entry in new_index.get("models", {}).items():
        folder = root / "zoo" / "nfzoo_zoo" / "models" / name
        if (folder / CARD_NAME).is_file():
            if write or folder / CARD_NAME not in rendered:
                entry["files"] = pin_files(folder, entry.get("files"), names=(CARD_NAME,))
            else:     # check mode: the pin the rewritten card would get
                entry["files"] = {**(entry.get("files") or {}),
                                  CARD_NAME: hashlib.sha256(rendered[folder / CARD_NAME].encode()).hexdigest()}
    if new_index != index_doc:
        diffs.append(_diff(json.dumps(index_doc, indent=2) + "\n", json.dumps(new_index, indent=2) + "\n",
                           "zoo/nfzoo_zoo/index.json"))
        if write:
            atomic_write_json(index_path, new_index)
    return diffs, res.warnings


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
    for name in [n for n in ORDER if n in index] + sorted(n for n in index if n not in ORDER):
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
            rels.append(REFERENCE)
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


def main(argv=None) -> int:
    """The command line above; returns the exit code (1: --check found differences, 2: a render error)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 with a diff if anything differs")
    ap.add_argument("--root", type=Path, default=ROOT, help="the repository root [this checkout]")
    a = ap.parse_args(argv)
    try:
        diffs, warnings = render_with_zoo_csv(a.root, write=not a.check)
    except RenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if a.check:
        if diffs:
            sys.stdout.write("".join(diffs))
            print(f"{len(diffs)} file(s) differ from docs/results: run `.venv/bin/python {TOOL}`", file=sys.stderr)
            return 1
        return 0
    print(f"rewrote {len(diffs)} file(s)" if diffs else "nothing to do: every number matches its file",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
