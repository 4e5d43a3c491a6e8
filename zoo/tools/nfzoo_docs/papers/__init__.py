"""Shared parts of the paper-table scripts docs/results/papers/table*.py (the GLEM tables 1, 2, 5, 6 use all of
it; the others write their table with `publish`): `from nfzoo_docs import papers as C` in a script, run as
`python docs/results/papers/SCRIPT` or imported by a test alike (docs/results/papers/common.py, where this
code lived, re-exports it).

Every script trains what it needs with the `nfzoo train` command (one run at a time, single-threaded),
evaluates the runs in this process with nfzoo's own evaluation functions, records every measured unit as
JSON under docs/results/papers/records/<run>/ beside the scripts (in git: the files the tables' numbers point
to; the run's weights stay in runs/papers/<run>, outside git), and rewrites its table (Markdown + JSON under
docs/results/papers) from whatever is recorded. A second call skips every run and measurement whose record
already exists, so an interrupted script is resumed by running it again, and `--report-only` rewrites a
table from a clean clone. (Tables measured before 2026-12-03 kept these records in the run directories,
which were not kept: their JSON files are their record, and `--report-only` on them would lose numbers.)

The common training budget (SCHEDULE, GLEM_BASE): the glem-mnist5k recipe (zoo/nfzoo_zoo/models/
glem-mnist5k/recipe.yaml) cut from 80 to 24 epochs. GLEM separates its classes over the EM rounds (the
zoo run's mean pairwise KL per dimension grows from 0.001 to 15 over its 12 rounds, history.json), so the
short schedule keeps the recipe's 12 EM rounds (em_fraction 0.5 of 24 epochs) and then 12 epochs of the
flow on all the data; with the recipe's em_fraction 0.15 (3 rounds of 20 epochs) the KL per dimension had
only reached 0.03 when the rounds stopped (measured, runs/papers/probe-glem-e20-em0.15).

Modules: runs (settings, records, training), measure (the cached measurements), report (text, claim rules,
the written tables), timing (the timing records and their spread: Tables 7 and 8).
"""
from .measure import (
                      cached,
                      cnn_a,
                      code_label_agreement,
                      draw_monomodal,
                      is_monomodal,
                      load_model,
                      measure_standard,
                      measured,
                      nf_accuracy,
                      nf_accuracy_random_code,
                      oracle,
                      sample_metrics,
                      test_bpd,
                      test_set,
)
from .report import (
    HOLDS,
    MIN_SEEDS,
    REVERSED,
    RULE,
    WITHIN,
    combine,
    common_args,
    extreme,
    fmt,
    fmt_n,
    increasing,
    interior_extreme,
    label,
    ordered,
    ordering,
    publish,
    rising_then_flat,
    schedule_text,
    step,
    verdict,
)
from .runs import (
                      CNN_A_IMAGES,
                      CNN_A_SAMPLING,
                      DATASET,
                      GLEM_BASE,
                      ORACLE,
                      PAPER,
                      PAPER_SAMPLING,
                      PAPERS,
                      RECORDS,
                      RFCM_SAMPLING,
                      ROOT,
                      RUNS,
                      SAMPLE_SEEDS,
                      SAMPLES,
                      SCHEDULE,
                      em_end_kl,
                      ensure_run,
                      history,
                      log,
                      mean_sd,
                      provenance,
                      read,
                      rec,
                      require_one_thread,
                      short_commit,
                      train_argv,
                      write,
)
from .timing import (
    IDLE,
    IDLE_MARGIN,
    as_stat,
    fmt_spread,
    idle,
    loadavg,
    machine,
    machine_text,
    round_ratios,
    spread,
    timed,
)

__all__ = ["cached", "cnn_a", "code_label_agreement", "draw_monomodal", "is_monomodal", "load_model",
           "measure_standard", "measured", "nf_accuracy", "nf_accuracy_random_code", "oracle", "sample_metrics",
           "test_bpd", "test_set", "HOLDS", "MIN_SEEDS", "REVERSED", "RULE", "WITHIN", "combine", "extreme", "fmt_n",
           "increasing", "interior_extreme", "ordering", "rising_then_flat", "step", "verdict",
           "common_args", "fmt", "label", "ordered", "publish", "schedule_text",
           "CNN_A_IMAGES", "CNN_A_SAMPLING", "DATASET", "GLEM_BASE", "ORACLE", "PAPER", "PAPER_SAMPLING", "PAPERS",
           "RECORDS", "RFCM_SAMPLING", "ROOT", "RUNS", "SAMPLE_SEEDS", "SAMPLES", "SCHEDULE", "em_end_kl",
           "ensure_run", "history", "log", "mean_sd", "provenance", "read", "rec", "require_one_thread",
           "short_commit", "train_argv", "write",
           "IDLE", "IDLE_MARGIN", "as_stat", "fmt_spread", "idle", "loadavg", "machine", "machine_text",
           "round_ratios", "spread", "timed"]
