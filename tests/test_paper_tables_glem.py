"""The GLEM paper-table scripts (docs/results/papers/table{1,2,5,6}_*.py): their claim rules label the paper's
own numbers as the paper reads them, and the runs they share are trained by one and the same command."""
import importlib
import sys
from pathlib import Path

import pytest

PAPERS = Path(__file__).resolve().parents[1] / "docs" / "results" / "papers"


@pytest.fixture(scope="module")
def tables():
    names = ("common", "table1_glem_baselines", "table2_glem_lambda", "table5_glem_augment",
             "table6_glem_as_paper")
    sys.path.insert(0, str(PAPERS))
    try:
        yield {n: importlib.import_module(n) for n in names}
    finally:   # the folder's generic module names (common) leave no trace for other tests
        sys.path.remove(str(PAPERS))
        for n in names:
            sys.modules.pop(n, None)


def test_lambda_rules_hold_on_the_papers_table3_and_fail_on_their_opposites(tables):
    t2 = tables["table2_glem_lambda"]
    assert t2.rising_then_flat([v for v in t2.PAPER["nf_a"]]) is True
    assert t2.interior_extreme(list(t2.PAPER["fid"]), lowest=True) is True
    assert t2.interior_extreme(list(t2.PAPER["l_r"]), lowest=False) is True
    assert t2.increasing(list(t2.PAPER["bpd"])) is True
    assert t2.rising_then_flat([60.0, 70.0, 80.0, 60.0]) is False       # rises, then drops by 20
    assert t2.rising_then_flat([70.0, 72.0, 73.0]) is False             # never rises by 5 points
    assert t2.interior_extreme([30.0, 25.0, 20.0], lowest=True) is False  # lowest at the end: no U
    assert t2.increasing([1.6, 1.7, 1.7]) is False
    assert t2.rising_then_flat([1.0, None]) is None


def test_orderings_need_every_value_and_strict_ones_need_gaps_beyond_the_spread(tables):
    C = tables["common"]
    vals = {"a": {"mean": 0.9, "sd": 0.01}, "b": {"mean": 0.7, "sd": 0.05}, "c": {"mean": 0.68, "sd": 0.01}}
    assert C.ordered(vals, ["a", "b", "c"]) is True
    assert C.ordered(vals, ["a", "b", "c"], strict_margin=True) is False   # b - c = 0.02 < sd 0.05
    assert C.ordered(vals, ["c", "b"]) is False
    assert C.ordered({**vals, "c": None}, ["a", "c"]) is None
    assert C.ordered({"x": {"mean": 30.0}, "y": {"mean": 20.0}}, ["y", "x"], higher_better=False) is True
    assert C.label(None).startswith("not testable here")


def test_the_shared_runs_are_trained_by_the_same_command_in_every_table(tables):
    C, t1, t2, t6 = (tables[n] for n in ("common", "table1_glem_baselines", "table2_glem_lambda",
                                          "table6_glem_as_paper"))
    for lam, variant in ((0.0, "lambda0"), (0.45, "glem")):
        assert t2.run_name(lam) == t1.run_name(variant, 0)
        assert C.train_argv(t2.run_name(lam), t2.sets_for(lam), 0) == \
            C.train_argv(t1.run_name(variant, 0), t1.VARIANTS[variant][1], 0)
    assert C.train_argv(t6.REFERENCE, t6.VARIANTS[t6.REFERENCE][1], 0) == \
        C.train_argv(t1.run_name("glem", 0), t1.VARIANTS["glem"][1], 0)
    # every other point of the sweep scales the recipe's annealing 0.45 -> 0.25
    argv = C.train_argv(t2.run_name(0.9), t2.sets_for(0.9), 0)
    assert "kl_weight=0.9" in argv and "kl_weight_final=0.5" in argv and argv.count("--set") == \
        len(C.GLEM_BASE)


def test_the_records_the_tables_point_to_are_kept_in_git_beside_the_scripts(tables):
    C = tables["common"]
    assert C.rec(C.RUNS / "t2-lam0.3-s0") == PAPERS / "records" / "t2-lam0.3-s0"
    assert C.RECORDS.relative_to(PAPERS) == Path("records")
    assert not C.RECORDS.is_relative_to(C.RUNS)


def test_a_recorded_table_is_rewritten_from_its_records_alone(tables):
    """Every point of table2_glem_lambda.json whose run has a record is what the records in git give (the
    weights are not needed): `--report-only` on a clean clone rewrites the same numbers."""
    import json

    t2 = tables["table2_glem_lambda"]
    published = json.loads((PAPERS / "table2_glem_lambda.json").read_text())["points"]
    recorded = json.loads(json.dumps(t2.collect()))
    assert [p["lambda_0"] for p in recorded] == list(t2.LAMBDAS)
    assert all(p["command"] is not None and p["cnn_a"] is not None for p in recorded)   # every unit recorded
    by_lambda = {p["lambda_0"]: p for p in published}
    for p in recorded:
        assert p == by_lambda[p["lambda_0"]], p["run"]
