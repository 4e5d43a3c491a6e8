"""The zoo's Hub half through the real huggingface_hub client and a Hub-compatible server on loopback
(tests/hubserver.py): pull + sha256 verification + load, revision pinning, corrupted blobs, missing
repos, server errors, server down, offline mode, zero requests for pinned cached loads, push / pull,
`nfzoo cache`, `nfzoo list --pretrained` sources, unpublished entries, and the zoo's index tool."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import nfzoo
from nfzoo.errors import ChecksumError, NotCachedError
from nfzoo.hub import publish

ROOT = Path(__file__).resolve().parent.parent
FILES = ("config.json", "model.safetensors", "README.md")


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _model_dir(path, seed, card=True):
    """A tiny Glow saved with save_pretrained (plus a model card), different weights per seed."""
    torch.manual_seed(seed)
    m = nfzoo.create_model("glow", image_shape=(1, 8, 8), levels=1, steps=1, hidden=8)
    m.initialize(torch.rand(8, 1, 8, 8))
    m.save_pretrained(path)
    if card:
        (path / "README.md").write_text(publish.model_card(path.name, publish.run_info(path)))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"v1": _model_dir(root / "v1", 1), "v2": _model_dir(root / "v2", 2),
            "bare": _model_dir(root / "bare", 3, card=False)}


class _TestZoo:
    """A plugin registering pretrained entries the way nfzoo-zoo does (index fields as metadata)."""

    def __init__(self):
        self.entries = {}

    @nfzoo.hookimpl
    def register_pretrained(self, register):
        for name, meta in self.entries.items():
            register(name, meta.get("path") or name, **meta)


@pytest.fixture
def zoo(hub, fresh_registry):
    plugin = _TestZoo()
    fresh_registry.get_registry().register_plugin(plugin, "testzoo")

    def add(name, folder, revision, status="hub", repo_id=None, **extra):
        meta = {"architecture": "glow", "config": {"levels": 1}, "dataset": "digits", "metrics": {},
                "repo_id": repo_id or f"nfzoo/{name}", "revision": revision, "license": "mit", "paper": None,
                "description": f"test model {name}", "default": False, "status": status,
                "files": {f: _sha(folder / f) for f in FILES if (folder / f).is_file()}, **extra}
        plugin.entries[name] = meta
        fresh_registry.get_registry()._registries = None  # rebuilt on next use
        return meta
    return add


def cli(runner, app, *args):
    """Invoke the CLI; it must end by exiting (no uncaught exception, so no traceback)."""
    res = runner.invoke(app, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    assert "Traceback" not in res.output
    return res


def _error_line(res):
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, res.output
    return lines[0]


def _same_weights(model, folder):
    ref = nfzoo.loading.api.load_directory(folder).state_dict()
    return all(torch.equal(v, ref[k]) for k, v in model.state_dict().items())


def _sources(runner, app):
    res = cli(runner, app, "list", "--pretrained", "--json")
    assert res.exit_code == 0, res.output
    # the test entries only (the shipped zoo's own models are listed too)
    return {e["name"]: e["source"] for e in json.loads(res.stdout) if e["name"].startswith("tiny")}


# ---------------------------------------------------------------- pull, verify, load
def test_pull_verifies_and_loads_then_pinned_cached_loads_make_no_requests(hub, zoo, models, runner, app):
    sha = hub.add_repo("nfzoo/tiny", models["v1"])
    zoo("tiny", models["v1"], sha)
    assert _sources(runner, app)["tiny"] == "hub"
    with pytest.raises(NotCachedError, match="nfzoo pull tiny"):
        nfzoo.load("tiny")
    assert hub.count == 0, "a load without download=True never touches the network"

    res = cli(runner, app, "pull", "tiny", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["source"] == "hub" and doc["revision"] == sha and sorted(doc["downloaded"]) == sorted(FILES)
    assert {f: d["sha256"] for f, d in doc["files"].items()} == {f: _sha(models["v1"] / f) for f in FILES}
    assert _sources(runner, app)["tiny"] == "cached"

    hub.reset_counts()
    assert _same_weights(nfzoo.load("tiny"), models["v1"])
    assert _same_weights(nfzoo.FlowModel.from_pretrained("tiny", download=True), models["v1"])
    assert _same_weights(nfzoo.load(f"hf-hub:nfzoo/tiny@{sha}"), models["v1"])
    res = cli(runner, app, "pull", "tiny")
    assert res.exit_code == 0 and "already cached" in res.output
    assert hub.count == 0, f"pinned + cached must make zero requests, made {hub.requests}"


def test_revision_pinning(hub, zoo, models, runner, app):
    sha1 = hub.add_repo("nfzoo/tiny", models["v1"])
    sha2 = hub.add_repo("nfzoo/tiny", models["v2"])  # main moves on; the index still pins sha1
    zoo("tiny", models["v1"], sha1)
    res = cli(runner, app, "pull", "tiny", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["revision"] == sha1
    assert _same_weights(nfzoo.load("tiny"), models["v1"])

    res = cli(runner, app, "pull", "tiny", "--revision", "main", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["revision"] == sha2
    hub.reset_counts()
    assert _same_weights(nfzoo.load("tiny", revision="main"), models["v2"])  # refs/main, from the cache
    assert _same_weights(nfzoo.load("hf-hub:nfzoo/tiny"), models["v2"])
    assert _same_weights(nfzoo.load("tiny"), models["v1"])
    assert hub.count == 0


def test_corrupted_download_is_caught_and_removed(hub, zoo, models, runner, app):
    sha = hub.add_repo("nfzoo/tiny", models["v1"])
    zoo("tiny", models["v1"], sha)
    hub.corrupt("nfzoo/tiny", "model.safetensors")  # same size: only the sha256 can tell
    res = cli(runner, app, "pull", "tiny")
    assert res.exit_code == 1
    line = _error_line(res)
    assert "sha256" in line and "model.safetensors" in line and "deleted" in line
    cache = Path(os.environ["HF_HUB_CACHE"]) / "models--nfzoo--tiny"
    assert not (cache / "snapshots" / sha / "model.safetensors").exists()
    assert not (cache / "blobs" / _sha(models["v1"] / "model.safetensors")).exists()
    assert _sources(runner, app)["tiny"] == "hub"

    hub.corrupted.clear()
    res = cli(runner, app, "pull", "tiny", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["downloaded"] == ["model.safetensors"]
    assert _same_weights(nfzoo.load("tiny"), models["v1"])


def test_damaged_cache_file_is_found_by_verify_and_never_loaded(hub, zoo, models, runner, app):
    sha = hub.add_repo("nfzoo/tiny", models["v1"])
    zoo("tiny", models["v1"], sha)
    assert cli(runner, app, "pull", "tiny").exit_code == 0
    assert cli(runner, app, "cache", "verify", "tiny").exit_code == 0
    snapshot = Path(os.environ["HF_HUB_CACHE"]) / "models--nfzoo--tiny" / "snapshots" / sha
    blob = (snapshot / "config.json").resolve()
    blob.write_bytes(blob.read_bytes().replace(b'"levels": 1', b'"levels": 2'))
    res = cli(runner, app, "cache", "verify", "tiny", "--json")
    assert res.exit_code == 1
    results = json.loads(res.stdout)[0]["results"]
    assert results["config.json"]["status"] == "mismatch" and results["model.safetensors"]["status"] == "ok"
    with pytest.raises(ChecksumError, match="config.json"):
        nfzoo.load("tiny")
    assert not blob.exists(), "the bad blob is deleted"
    assert _same_weights(nfzoo.load("tiny", download=True), models["v1"])  # fetched again


# ---------------------------------------------------------------- failures
def test_missing_repo_and_revision(hub, zoo, models, runner, app):
    sha = hub.add_repo("nfzoo/tiny", models["v1"])
    zoo("tiny", models["v1"], sha)
    zoo("gone", models["v1"], "0" * 40)  # the index names a repo the Hub does not have
    res = cli(runner, app, "pull", "gone")
    assert res.exit_code == 1 and "nfzoo/gone was not found" in _error_line(res)
    res = cli(runner, app, "pull", "hf-hub:nfzoo/nope")
    assert res.exit_code == 2 and "not found" in _error_line(res)  # the user named it: bad input
    res = cli(runner, app, "pull", "tiny", "--revision", "f" * 40)
    assert res.exit_code == 2 and "revision" in _error_line(res)
    res = cli(runner, app, "pull", "hf-hub:not a repo")
    assert res.exit_code == 2 and "hf-hub:ORG/NAME" in _error_line(res)


def test_server_error_and_server_down(hub, zoo, models, runner, app):
    sha = hub.add_repo("nfzoo/tiny", models["v1"])
    zoo("tiny", models["v1"], sha)
    hub.fail_status = 500
    res = cli(runner, app, "pull", "tiny")
    assert res.exit_code == 1 and "HTTP 500" in _error_line(res)
    hub.fail_status = None
    assert cli(runner, app, "pull", "tiny").exit_code == 0
    hub.stop()
    assert _same_weights(nfzoo.load("tiny"), models["v1"]), "a pinned, cached model loads with the Hub down"
    res = cli(runner, app, "pull", "tiny", "--revision", "main")
    assert res.exit_code == 1
    line = _error_line(res)
    assert "cannot reach" in line and "HF_ENDPOINT" in line and "embedded" in line


def test_offline_mode(hub, zoo, models, runner, app, monkeypatch):
    sha = hub.add_repo("nfzoo/tiny", models["v1"])
    zoo("tiny", models["v1"], sha)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    res = cli(runner, app, "pull", "tiny")
    assert res.exit_code == 1 and "HF_HUB_OFFLINE" in _error_line(res)
    assert hub.count == 0
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert cli(runner, app, "pull", "tiny").exit_code == 0
    assert cli(runner, app, "pull", "hf-hub:nfzoo/tiny").exit_code == 0  # main, not pinned
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.reset_counts()
    assert _same_weights(nfzoo.load("tiny"), models["v1"])
    res = cli(runner, app, "pull", "hf-hub:nfzoo/tiny")  # offline, an unpinned pull falls back to the cache
    assert res.exit_code == 0 and "already cached" in res.output
    assert hub.count == 0


def test_unpublished_entry_exits_1_with_one_line(hub, zoo, models, runner, app):
    zoo("tiny-unpub", models["v1"], None, status="unpublished")
    for args in (["pull", "tiny-unpub"], ["sample", "--model", "tiny-unpub", "--device", "cpu"]):
        res = cli(runner, app, *args)
        assert res.exit_code == 1
        line = _error_line(res)
        assert "not published yet" in line and "nfzoo train glow --dataset digits" in line
    r = subprocess.run([sys.executable, "-m", "nfzoo_cli", "pull", "glow-nowhere"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert hub.count == 0


# ---------------------------------------------------------------- push, cache, sources
def test_push_then_pull_round_trip(hub, zoo, models, runner, app):
    res = cli(runner, app, "push", str(models["bare"]), "--repo-id", "nfzoo/pushed", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["card"] == "generated" and len(doc["revision"]) == 40
    served = hub.files("nfzoo/pushed", doc["revision"])
    assert {"config.json", "model.safetensors", "README.md"} <= set(served)
    card = served["README.md"].read_text()
    assert card.startswith("---\nlibrary_name: nfzoo\n") and "- glow" in card
    assert doc["files"]["model.safetensors"] == _sha(models["bare"] / "model.safetensors")
    assert not (models["bare"] / "README.md").exists(), "push does not write into the directory"

    meta = zoo("pushed", models["bare"], doc["revision"])
    meta["files"] = doc["files"]  # the pins push printed, as the index would hold them
    res = cli(runner, app, "pull", "pushed", "--json")
    assert res.exit_code == 0, res.output
    assert _same_weights(nfzoo.load("pushed"), models["bare"])
    assert _same_weights(nfzoo.load("hf-hub:nfzoo/pushed", download=True), models["bare"])

    res = cli(runner, app, "push", str(models["v1"]), "--repo-id", "nfzoo/pushed", "--revision", "dev",
              "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["card"] == "given"
    assert _same_weights(nfzoo.load("hf-hub:nfzoo/pushed@dev", download=True), models["v1"])
    res = cli(runner, app, "push", str(models["v1"]), "--repo-id", "bad id")
    assert res.exit_code == 2


def test_cache_ls_verify_rm(hub, zoo, models, runner, app):
    zoo("tiny-a", models["v1"], hub.add_repo("nfzoo/tiny-a", models["v1"]))
    zoo("tiny-b", models["v2"], hub.add_repo("nfzoo/tiny-b", models["v2"]))
    res = cli(runner, app, "cache", "ls", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout) == []
    for name in ("tiny-a", "tiny-b"):
        assert cli(runner, app, "pull", name).exit_code == 0
    assert cli(runner, app, "pull", "hf-hub:nfzoo/tiny-b@main").exit_code == 0
    rows = json.loads(cli(runner, app, "cache", "ls", "--json").stdout)
    assert [(r["name"], r["pinned"]) for r in rows] == [("tiny-a", True), ("tiny-b", True)]
    assert rows[1]["refs"] == ["main"] and rows[0]["files"] == sorted(FILES)
    res = cli(runner, app, "cache", "verify", "--json")
    assert res.exit_code == 0 and all(d["ok"] for d in json.loads(res.stdout))
    assert {r["status"] for d in json.loads(res.stdout) for r in d["results"].values()} == {"ok"}
    assert "tiny-a" in cli(runner, app, "cache", "ls").output

    assert cli(runner, app, "cache", "rm").exit_code == 2
    res = cli(runner, app, "cache", "rm", "tiny-a", "--json")
    assert res.exit_code == 0 and [r["name"] for r in json.loads(res.stdout)["removed"]] == ["tiny-a"]
    assert [r["name"] for r in json.loads(cli(runner, app, "cache", "ls", "--json").stdout)] == ["tiny-b"]
    assert _sources(runner, app) == {"tiny-a": "hub", "tiny-b": "cached"}
    assert cli(runner, app, "cache", "rm", "--all").exit_code == 0
    assert json.loads(cli(runner, app, "cache", "ls", "--json").stdout) == []


def test_list_pretrained_sources_and_embedded_default(hub, zoo, models, runner, app):
    sha = hub.add_repo("nfzoo/tiny-hub", models["v2"])
    zoo("tiny-emb", models["v1"], None, status="embedded", path=str(models["v1"]), default=True)
    zoo("tiny-hub", models["v2"], sha)
    zoo("tiny-cached", models["v2"], sha, repo_id="nfzoo/tiny-hub")
    zoo("tiny-unpub", models["v1"], None, status="unpublished")
    assert cli(runner, app, "pull", "tiny-cached").exit_code == 0
    hub.reset_counts()
    assert _sources(runner, app) == {"tiny-emb": "embedded", "tiny-hub": "cached", "tiny-cached": "cached",
                                     "tiny-unpub": "unpublished"}
    assert "embedded" in cli(runner, app, "list", "--pretrained").output
    assert json.loads(cli(runner, app, "info", "tiny-hub", "--json").stdout)["source"] == "cached"
    assert _same_weights(nfzoo.load("glow"), models["v1"]), "a family name loads its default model"
    res = cli(runner, app, "pull", "tiny-emb")
    assert res.exit_code == 0 and "nothing to download" in res.output
    assert hub.count == 0
    # the source column costs no torch import
    code = ("import sys; from nfzoo.registry.plugins import Entry; from nfzoo.hub.fetch import source_of\n"
            f"e = Entry('pretrained', 'x', 'x', 'p', {{'repo_id': 'nfzoo/tiny-hub', 'revision': {sha!r}, "
            "'status': 'hub', 'files': {}})\n"
            "print(source_of(e), 'torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy())
    assert r.stdout.split() == ["cached", "False"], r.stderr


# ---------------------------------------------------------------- the zoo package
def test_update_index_tool_and_zoo_plugin(tmp_path, models):
    zoo_dir = tmp_path / "nfzoo_zoo"
    (zoo_dir / "models").mkdir(parents=True)
    (zoo_dir / "index.json").write_text('{"format": 1, "models": {}}\n')
    run = tmp_path / "run"
    shutil.copytree(models["bare"], run)
    (run / "train.json").write_text(json.dumps({"train": {"arch": "glow", "dataset": "digits"}}))
    (run / "history.json").write_text(json.dumps([{"epoch": 1, "test_bpd": 2.123456}]))
    tool = [sys.executable, str(ROOT / "zoo" / "tools" / "update_index.py"), "glow-digits",
            "--zoo", str(zoo_dir)]

    r = subprocess.run(tool + ["--from", str(run), "--default", "--paper", "arXiv:1807.03039"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    entry = json.loads((zoo_dir / "index.json").read_text())["models"]["glow-digits"]
    folder = zoo_dir / "models" / "glow-digits"
    assert entry["status"] == "embedded" and entry["revision"] is None and entry["default"] is True
    assert entry["dataset"] == "digits" and entry["metrics"]["test_bpd"] == 2.1235
    assert entry["repo_id"] == "nfzoo/glow-digits" and entry["architecture"] == "glow"
    assert entry["files"] == {f: _sha(folder / f) for f in sorted(FILES)}
    assert (folder / "README.md").read_text().startswith("---\nlibrary_name: nfzoo\n")

    sys.path.insert(0, str(ROOT / "zoo"))
    try:
        from nfzoo_zoo.plugin import entries
    finally:
        sys.path.remove(str(ROOT / "zoo"))
    (name, meta), = entries(zoo_dir / "index.json", zoo_dir / "models")
    assert name == "glow-digits" and meta["path"] == str(folder)

    r = subprocess.run(tool + ["--no-embed"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    entry2 = json.loads((zoo_dir / "index.json").read_text())["models"]["glow-digits"]
    assert entry2["status"] == "unpublished" and entry2["files"] == entry["files"]
    assert not (folder / "model.safetensors").exists()
    r = subprocess.run(tool + ["--revision", "a" * 40], capture_output=True, text=True)
    entry3 = json.loads((zoo_dir / "index.json").read_text())["models"]["glow-digits"]
    assert r.returncode == 0 and entry3["status"] == "hub" and entry3["revision"] == "a" * 40
    assert entry3["files"] == entry["files"], "the generated card is regenerated identically"
    r = subprocess.run(tool + ["--revision", "main"], capture_output=True, text=True)
    assert r.returncode == 2 and "40-hex" in r.stderr


def test_the_zoo_index_is_consistent():
    """The shipped index: pins are sha256, revisions commit shas, embedded files match, one default
    per architecture (holds for an empty index too)."""
    zoo = ROOT / "zoo" / "nfzoo_zoo"
    index = json.loads((zoo / "index.json").read_text())
    defaults = {}
    for name, e in index["models"].items():
        assert e["repo_id"] and e["status"] in ("embedded", "hub", "unpublished"), name
        assert e["revision"] is None or len(e["revision"]) == 40, name
        if e["status"] != "unpublished" or e["revision"]:   # weights exist: they are pinned
            assert set(e["files"]) >= {"config.json", "model.safetensors"}, name
        else:   # no weights yet: the card is all there is, and it says so
            assert (zoo / "models" / name / "README.md").is_file(), name
            assert "unpublished" in (zoo / "models" / name / "README.md").read_text().lower(), name
        for f, sha in e["files"].items():
            assert len(sha) == 64, (name, f)
            if (zoo / "models" / name / f).is_file():
                assert _sha(zoo / "models" / name / f) == sha, f"{name}/{f} does not match the index"
        assert (e["status"] == "embedded") == (zoo / "models" / name / "model.safetensors").is_file(), name
        if e.get("default"):
            assert e["architecture"] not in defaults, f"two defaults for {e['architecture']}"
            defaults[e["architecture"]] = name


def test_shipped_zoo_models_load_offline_and_reproduce_their_cards(monkeypatch, tmp_path):
    """The embedded flows load with no network at all, and the oracle is refused as a flow."""
    import nfzoo
    from nfzoo.errors import UsageError
    from nfzoo.registry.plugins import get_registry

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    flows = [e for e in get_registry().list("pretrained") if e.metadata.get("kind") == "flow"]
    assert {"glow-mnist5k", "realnvp-mnist5k", "nsf-mnist5k"} <= {e.name for e in flows}
    model = nfzoo.load("glow")  # the family name resolves to its default model
    assert model.architecture == "glow" and model.config["image_shape"] == [1, 28, 28]
    x = model.sample(4, generator=__import__("torch").Generator().manual_seed(0))
    assert x.shape == (4, 1, 28, 28) and 0 <= float(x.min()) and float(x.max()) <= 1
    with pytest.raises(UsageError, match="oracle classifier"):
        nfzoo.load("oracle-mnist5k")


def test_glow_mnist5k_reproduces_its_card_bpd():
    import nfzoo
    from nfzoo.data import load_dataset
    from nfzoo.registry.plugins import get_registry
    from nfzoo.training.trainer import evaluate_bpd

    card = get_registry().get("pretrained", "glow-mnist5k").metadata["metrics"]["test_bpd"]
    got = evaluate_bpd(nfzoo.load("glow-mnist5k"), load_dataset("mnist5k", "test"))["bpd"]
    assert abs(got - card) < 0.01


def test_model_card_names_that_yaml_would_retype_stay_strings(tmp_path):
    """Found by tests/test_fuzz.py: a dataset or license named "0" or "true" read back as a number or a
    boolean, and a character beyond U+FFFF as two; a run's history.json that is not a list was a TypeError."""
    import json

    from huggingface_hub import RepoCard

    from nfzoo.errors import ConfigError

    for name in ("0", "true", "null", "1e5", "a: b", "\U00010000", "#x"):
        data = RepoCard(publish.model_card("m", {"architecture": "glow", "dataset": name, "license": name})).data
        assert data.datasets == [name] and data.license == name, name
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "glow", "config": {}}))
    (tmp_path / "history.json").write_text("null")
    with pytest.raises(ConfigError, match="history.json"):
        publish.run_info(tmp_path)
    (tmp_path / "history.json").write_text(json.dumps([{"test_bpd": "abc"}, {"test_bpd": 1.5, "epoch": 2}]))
    assert publish.run_info(tmp_path)["metrics"] == {"test_bpd": 1.5, "epochs": 2}
