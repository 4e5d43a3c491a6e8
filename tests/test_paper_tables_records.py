"""The paper tables 4, 5, 7 and 8 (docs/results/papers/table{4,5,7,8}_*.py) are rebuilt from the records in git
alone: what `--report-only` computes from their records folders equals the committed JSON (numbers, claims,
labels, caveats, whether it rebuilds), and the committed Markdown is the one generated from that JSON (one
source), stating the labelling rule and every caveat."""
import importlib.util
import json
from pathlib import Path

import pytest

PAPERS = Path(__file__).resolve().parents[1] / "docs" / "results" / "papers"


def load(name):
    spec = importlib.util.spec_from_file_location(f"paper_records_{name}", PAPERS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def committed(name):
    return json.loads((PAPERS / f"{name}.json").read_text()), (PAPERS / f"{name}.md").read_text()


def written(markdown):
    """The Markdown as publish writes it (one final newline)."""
    return markdown.rstrip("\n") + "\n"


def same(doc, published, keys):
    rebuilt = json.loads(json.dumps(doc))          # the JSON round trip the published file went through
    for k in keys:
        assert rebuilt[k] == published[k], k


def states_the_rule_and_caveats(mod, published, md):
    assert published["rule"] == mod.C.RULE and mod.C.RULE in md
    assert published["caveats"] and all(isinstance(c, str) and c in md for c in published["caveats"])
    rb = published["rebuilds_from_records"]
    assert set(rb) == {"ok", "missing"} and rb["ok"] == (not rb["missing"])


def test_table4_rebuilds_from_its_records():
    t4 = load("table4_glem_table4_cnn_a")
    published, md = committed(t4.NAME)
    sizes = [int(r["size"].rstrip("x")) for r in published["rows"]]
    doc = t4.build(sizes, published["real"]["seeds"], "test")
    same(doc, published, ["rows", "real", "claims", "caveats", "rule", "rebuilds_from_records"])
    assert published["rebuilds_from_records"] == {"ok": True, "missing": []}
    assert published["claims"][0]["verdict"] == "inconclusive at this scale (2x -> 5x within one sd)"
    assert md == written(t4.markdown(published))
    states_the_rule_and_caveats(t4, published, md)


def test_table5_rebuilds_from_its_records_or_says_which_are_missing():
    t5 = load("table5_glem_augment")
    published, md = committed(t5.NAME)
    doc = t5.build_doc(published["seeds"], published["mode"], [])
    same(doc, published, ["arms", "paired_difference", "power_points", "claim", "caveats", "rule",
                          "rebuilds_from_records"])
    sources = {src for a in published["arms"].values() for src in a["source"].values()}
    # a cell without its record is read from the lost runs' table, and the JSON says the table does not rebuild
    assert (sources == {"record"}) == published["rebuilds_from_records"]["ok"]
    if "lost-runs" in sources:
        assert published["claim"]["label"].endswith("on numbers without records (the lost runs')")
    assert md == written(t5.markdown(published))
    states_the_rule_and_caveats(t5, published, md)


def test_table7_rebuilds_from_its_records():
    t7 = load("table7_diffused_flows_table5_4")
    published, md = committed(t7.NAME)
    doc = t7.report("test")
    same(doc, published, ["fid", "timing_record", "timing", "claims", "bound_t500", "exact_denoiser_slack_bits_per_dim",
                          "latent_rms", "train", "caveats", "rule", "rebuilds_from_records"])
    assert md == written(t7.markdown(published))
    states_the_rule_and_caveats(t7, published, md)


def test_table8_rebuilds_from_its_timing_record():
    t8 = load("table8_sampling_time")
    published, md = committed(t8.NAME)
    doc = t8.build_doc(t8.C.read(t8.TIMING), "test")
    same(doc, published, ["results", "shapes", "claims", "idle", "machine_state", "caveats", "rule",
                          "rebuilds_from_records"])
    assert md == written(t8.markdown(published))
    states_the_rule_and_caveats(t8, published, md)


@pytest.mark.parametrize("name", ["table7_diffused_flows_table5_4", "table8_sampling_time"])
def test_timing_records_keep_every_call_with_the_machine_state(name):
    """A timing record holds every timed call with the load before and after it; its table's seconds are the
    median and spread of those calls."""
    mod = load(name)
    published, _ = committed(name)
    assert published["timing_record"] is not None, f"{name}.json names no timing record: time it on an idle machine"
    rec = mod.C.read(mod.ROOT / published["timing_record"])
    assert rec["complete"] and rec["calls"]
    assert all({"round", "case", "seconds", "load_before", "load_after"} <= set(c) for c in rec["calls"])
    assert "nproc" in rec["machine"] and rec["threads"] >= 1
