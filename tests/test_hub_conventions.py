"""Hugging Face Hub conventions (nfzoo.hub.mixin, nfzoo.hub.publish), against the loopback Hub of tests/hubserver.py:
`push_to_hub` then `FlowModel.from_pretrained` gives back the same weights, config.json and sampling record;
the uploaded card parses (huggingface_hub's ModelCard) to library_name nfzoo, the tags and a model-index of
the run's results; `.eval_results/` files are written for a data set with a Hub dataset id (and a later push
replaces nfzoo's own, never others'); `save_pretrained` keeps nfzoo's two files; directories load; bad repo
ids and the mixin's arguments nfzoo does not take are UsageErrors (exit 2) before any request. And
docs/results/zoo.csv is what zoo/tools/render_docs.py renders, checked by its --check."""
import csv
import importlib.util
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

import nfzoo
from nfzoo import FlowModel
from nfzoo.errors import HubNotFoundError, UsageError

ROOT = Path(__file__).resolve().parent.parent
BAD_IDS = ("org/na me", "-org/name", "org/x..y", "org/name@main", "org/" + "n" * 97)


def _tiny(seed=0):
    torch.manual_seed(seed)
    m = nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8)
    m.initialize(torch.rand(8, 1, 8, 8))
    return m.eval()


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _served(hub, repo_id, url):
    sha = url.rstrip("/").rsplit("/", 1)[1]
    assert len(sha) == 40
    return {n: p.read_bytes() for n, p in hub.files(repo_id, sha).items()}


def _card(data: bytes):
    from huggingface_hub import ModelCard

    return ModelCard(data.decode()).data


def _eval_entries(data: bytes):
    from huggingface_hub import parse_eval_result_entries

    return parse_eval_result_entries(yaml.safe_load(data))


# ---------------------------------------------------------------- push_to_hub / from_pretrained
def test_push_to_hub_then_from_pretrained_round_trip(hub):
    m = _tiny(1)
    m.set_sampling({"sampler": "ancestral", "temperature": 0.7})
    url = m.push_to_hub("nfzoo/tiny-mixin", model_card_kwargs={"dataset": "mnist", "metrics": {"test_bpd": 1.5}})
    served = _served(hub, "nfzoo/tiny-mixin", url)
    assert sorted(served) == [".eval_results/nfzoo-bpd.yaml", ".gitattributes", "README.md", "config.json",
                              "model.safetensors"]
    assert json.loads(served["config.json"]) == m.config_document()     # nfzoo's config.json, nothing added

    card = _card(served["README.md"])
    assert card.library_name == "nfzoo" and card.license == "mit"
    assert card.tags == ["nfzoo", "normalizing-flow", "image-generation", "glow"]
    assert card.datasets == ["ylecun/mnist"] and card.metrics == ["bpd"]
    (r,) = card.eval_results
    assert (r.task_type, r.dataset_type, r.dataset_split, r.metric_type, r.metric_value) == \
        ("image-generation", "ylecun/mnist", "test", "bpd", 1.5)
    (e,) = _eval_entries(served[".eval_results/nfzoo-bpd.yaml"])
    assert (e.dataset_id, e.task_id, e.value) == ("ylecun/mnist", "bpd", 1.5)
    assert yaml.safe_load(served[".eval_results/nfzoo-bpd.yaml"])[0]["dataset"]["split"] == "test"

    back = FlowModel.from_pretrained("nfzoo/tiny-mixin")
    assert isinstance(back, FlowModel) and _same_weights(back, m) and not back.training
    assert back.config_document() == m.config_document()
    assert back.sampling == {"sampler": "ancestral", "temperature": 0.7} and back.default_temperature == 0.7
    # pinned to the commit and cached: no request at all; the hf-hub: spelling is the same repo
    sha = url.rsplit("/", 1)[1]
    hub.reset_counts()
    again = FlowModel.from_pretrained("nfzoo/tiny-mixin", revision=sha, local_files_only=True)
    assert hub.count == 0 and _same_weights(again, m)
    assert _same_weights(FlowModel.from_pretrained(f"hf-hub:nfzoo/tiny-mixin@{sha}", local_files_only=True), m)


def test_save_pretrained_keeps_nfzoo_files_and_pushes_the_directory(hub, tmp_path):
    m = _tiny(2)
    d = m.save_pretrained(tmp_path / "m")
    assert d == tmp_path / "m" and sorted(p.name for p in d.iterdir()) == ["config.json", "model.safetensors"]
    assert set(json.loads((d / "config.json").read_text())) == {"library", "nfzoo_version", "architecture", "config"}
    # a run directory: its history's last tested epoch is the card's bpd; digits has no Hub dataset
    (d / "history.json").write_text(json.dumps([{"epoch": 1, "test_bpd": 4.5}, {"epoch": 2, "test_bpd": 4.25}]))
    (d / "train.json").write_text(json.dumps({"train": {"dataset": "digits"}}))
    url = m.save_pretrained(d, push_to_hub=True, repo_id="nfzoo/run", commit_message="a run")
    served = _served(hub, "nfzoo/run", url)
    assert not any(n.startswith(".eval_results/") for n in served)
    card = _card(served["README.md"])
    assert card.datasets == ["digits"] and [(r.metric_type, r.metric_value) for r in card.eval_results] == \
        [("bpd", 4.25)]
    assert "epoch 2" in card.eval_results[0].metric_name
    assert not (d / "README.md").exists(), "the card is generated for the push, not written locally"
    assert _same_weights(FlowModel.from_pretrained("nfzoo/run"), m)

    with pytest.raises(UsageError, match="config.json"):
        m.save_pretrained(tmp_path / "x", config={"hidden": 8})
    with pytest.raises(UsageError, match="unknown argument"):
        m.save_pretrained(tmp_path / "x", push_to_hub=True, repo_id="nfzoo/x", revison="dev")
    hub.reset_counts()
    with pytest.raises(UsageError, match="create_pr"):
        m.push_to_hub("nfzoo/x", create_pr=True)
    with pytest.raises(UsageError, match="bad repo_id"):
        m.save_pretrained(tmp_path / "noorg", push_to_hub=True)     # the default repo id, the folder's name
    with pytest.raises(UsageError, match="unknown model card key"):
        m.push_to_hub("nfzoo/x", model_card_kwargs={"datasets": ["mnist"]})
    assert hub.count == 0
    assert m.generate_model_card(dataset="mnist").data.library_name == "nfzoo"


def test_nfzoo_push_writes_eval_results_and_replaces_only_its_own(hub, tmp_path, runner, app):
    m = _tiny(3)
    d = m.save_pretrained(tmp_path / "run")
    (d / "history.json").write_text(json.dumps([{"epoch": 3, "test_bpd": 1.25}]))
    (d / "train.json").write_text(json.dumps({"train": {"dataset": "cifar10"}}))
    (d / "samples").mkdir()
    (d / "samples" / "ancestral-t0.7.json").write_text(json.dumps({
        "sampler": "ancestral", "temperature": 0.7, "seeds": [0, 1], "n_samples": 200,
        "summary": {"fid": {"mean": 12.5, "sd": 0.5, "n": 2}, "recognisable": {"mean": 0.75, "sd": 0.01, "n": 2}}}))
    hub.create_repo("nfzoo/cli")
    hub.commit("nfzoo/cli", {".eval_results/community.yaml": b"- dataset: {id: x/y, task_id: t}\n  value: 1\n"})
    res = runner.invoke(app, ["push", str(d), "--repo-id", "nfzoo/cli", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    names = [".eval_results/nfzoo-bpd.yaml", ".eval_results/nfzoo-fid-ancestral-t0.7.yaml",
             ".eval_results/nfzoo-recognisable-ancestral-t0.7.yaml"]
    assert sorted(doc["eval_results"]) == names and doc["removed"] == []
    served = hub.files("nfzoo/cli", doc["revision"])
    values = {n: [(e.dataset_id, e.task_id, e.value) for e in _eval_entries(served[n].read_bytes())] for n in names}
    assert values == {names[0]: [("uoft-cs/cifar10", "bpd", 1.25)], names[1]: [("uoft-cs/cifar10", "fid", 12.5)],
                      names[2]: [("uoft-cs/cifar10", "recognisable", 0.75)]}
    card = _card(served["README.md"].read_bytes())
    assert card.metrics == ["bpd", "fid", "recognisable"]
    assert [(r.metric_type, r.metric_value) for r in card.eval_results] == [("bpd", 1.25), ("fid", 12.5),
                                                                           ("recognisable", 0.75)]
    assert "100 samples x 2 seed(s), ancestral, T=0.7" in card.eval_results[1].metric_name

    # the same repo, now a digits run: nfzoo's earlier results go, the community's file stays
    (d / "train.json").write_text(json.dumps({"train": {"dataset": "digits"}}))
    res = runner.invoke(app, ["push", str(d), "--repo-id", "nfzoo/cli", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["eval_results"] == {} and doc["removed"] == names
    assert sorted(n for n in hub.files("nfzoo/cli", doc["revision"]) if n.startswith(".eval_results/")) == \
        [".eval_results/community.yaml"]

    (d / "samples" / "broken.json").write_text("[1, 2]")
    res = runner.invoke(app, ["push", str(d), "--repo-id", "nfzoo/cli"])
    assert res.exit_code == 2 and "broken.json" in res.output and "Traceback" not in res.output


# ---------------------------------------------------------------- names
def test_from_pretrained_of_a_directory(hub, tmp_path, monkeypatch):
    m = _tiny(4)
    m.save_pretrained(tmp_path / "org" / "model")
    monkeypatch.chdir(tmp_path)
    hub.reset_counts()
    assert _same_weights(FlowModel.from_pretrained(tmp_path / "org" / "model"), m)   # an os.PathLike
    assert _same_weights(FlowModel.from_pretrained("org/model"), m)    # ORG/NAME, but a directory here
    assert _same_weights(FlowModel.from_pretrained("./org/model", map_location="cpu"), m)
    assert hub.count == 0

    class Other(FlowModel):
        pass
    with pytest.raises(UsageError, match="not a Other"):
        Other.from_pretrained("org/model")
    with pytest.raises(UsageError, match="constructor arguments"):
        FlowModel.from_pretrained("org/model", hidden=16)
    with pytest.raises(UsageError, match="HF_HUB_CACHE"):
        FlowModel.from_pretrained("org/model", cache_dir=str(tmp_path))


def test_from_pretrained_refuses_a_bad_repo_id_before_any_request(hub):
    hub.reset_counts()
    for bad in BAD_IDS:
        with pytest.raises(UsageError, match="bad Hub repo id") as err:
            FlowModel.from_pretrained(bad)
        assert err.value.exit_code == 2, bad
    assert hub.count == 0
    with pytest.raises(HubNotFoundError, match="no directory 'nfzoo/missing' here either") as err:
        FlowModel.from_pretrained("nfzoo/missing")
    assert err.value.exit_code == 2


# ---------------------------------------------------------------- docs/results/zoo.csv
def _renderer():
    spec = importlib.util.spec_from_file_location("render_docs_hub", ROOT / "zoo" / "tools" / "render_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_zoo_csv_is_what_the_renderer_makes():
    R = _renderer()
    index = json.loads((ROOT / "zoo" / "nfzoo_zoo" / "index.json").read_text())["models"]
    text = (ROOT / R.ZOO_CSV).read_text()
    assert text == R.zoo_csv(R.Results(ROOT), index), \
        "docs/results/zoo.csv is stale: run `.venv/bin/python zoo/tools/render_docs.py`"
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(text))}
    assert list(rows) == [n for n in R.ORDER if n in index] + sorted(n for n in index if n not in R.ORDER)
    # the numbers agree with the index's metrics, which the same renderer writes from the same files
    for name, row in rows.items():
        metrics = index[name].get("metrics") or {}
        if "test_bpd" in metrics:
            assert float(row["test_bpd"]) == pytest.approx(metrics["test_bpd"], abs=5e-5)
        if row["fid_mean"]:
            stem = R.stem_key(row["sources"].split(";")[-1])
            assert float(row["fid_mean"]) == pytest.approx(metrics[f"fid_oracle_{stem}"], abs=5e-3)
            assert float(row["recognisable_mean"]) == pytest.approx(metrics[f"recognisable_{stem}"], abs=5e-5)
            assert int(row["samples_per_seed"]) * int(row["seeds"]) > 0
    assert rows["oracle-mnist5k"]["test_accuracy"] and not rows["glem-cifar100"]["test_bpd"]


def test_a_stale_zoo_csv_fails_the_check(tmp_path):
    R = _renderer()
    shutil.copy2(ROOT / "README.md", tmp_path / "README.md")
    for f in [ROOT / "zoo" / "nfzoo_zoo" / "index.json",
              *(ROOT / "zoo" / "nfzoo_zoo" / "models").glob("*/README.md"),
              *(ROOT / "zoo" / "nfzoo_zoo" / "models").glob("*/config.json")]:
        (tmp_path / f.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, tmp_path / f.relative_to(ROOT))
    shutil.copytree(ROOT / "docs" / "results", tmp_path / "docs" / "results")
    path = tmp_path / R.ZOO_CSV
    good = path.read_text()
    assert R.main(["--check", "--root", str(tmp_path)]) == 0
    path.write_text(good.replace(",1.6407,", ",1.6408,", 1))
    assert path.read_text() != good
    diffs, _ = R.render_with_zoo_csv(tmp_path, write=False)
    assert len(diffs) == 1 and R.ZOO_CSV in diffs[0]
    assert R.main(["--check", "--root", str(tmp_path)]) == 1
    assert R.main(["--root", str(tmp_path)]) == 0 and path.read_text() == good
    path.unlink()
    assert R.main(["--check", "--root", str(tmp_path)]) == 1
