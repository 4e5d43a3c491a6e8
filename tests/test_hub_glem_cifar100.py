"""`nfzoo pull glem-cifar100`: the zoo entry (architecture and recipe only, no weights yet) against the
loopback test hub. The test builds a checkpoint with exactly the entry's config (the paper-scale GLEM for
CIFAR-100: 3 levels x 32 steps x 512 hidden, 100 classes; random weights, never shipped), publishes it on
the test hub, pins it in a copy of the zoo index the way `zoo/tools/update_index.py --revision` would,
then pulls, verifies, loads and samples chosen classes. With no hub it fails in one clear line."""
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

import nfzoo
from nfzoo.hub import publish
from nfzoo.hub.settings import cache_dir

pytest.importorskip("nfzoo_glem")
ROOT = Path(__file__).resolve().parent.parent
NAME = "glem-cifar100"


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _one_error_line(res):
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A glem-cifar100-shaped model directory (the entry's config, random weights, ActNorm initialised)."""
    import nfzoo_zoo.plugin as zp

    entry = zp.read_index()["models"][NAME]
    assert entry["status"] == "unpublished" and entry["revision"] is None, "the shipped entry has no weights"
    torch.manual_seed(0)
    model = nfzoo.create_model("glem", **entry["config"])
    with torch.no_grad():
        model.initialize(torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))
    d = tmp_path_factory.mktemp("glem-cifar100-shaped")
    model.save_pretrained(d)
    (d / "README.md").write_text(publish.model_card(NAME, publish.run_info(d)))
    return d, entry


def test_pull_verify_load_and_sample_chosen_classes(hub, checkpoint, fresh_registry, monkeypatch, tmp_path,
                                                   runner, app):
    import nfzoo_zoo.plugin as zp

    folder, entry = checkpoint
    # no weights published: one clear line, exit 1, no request made
    res = runner.invoke(app, ["pull", NAME])
    assert res.exit_code == 1 and "not published yet" in _one_error_line(res)
    assert "--preset cifar100" in res.output and hub.count == 0

    sha = hub.add_repo(f"nfzoo/{NAME}", folder)
    index = zp.read_index()
    index["models"][NAME].update(revision=sha, status="hub",
                                 files={f: _sha(folder / f) for f in ("config.json", "model.safetensors",
                                                                      "README.md")})
    (tmp_path / "index.json").write_text(json.dumps(index))
    monkeypatch.setattr(zp, "INDEX", tmp_path / "index.json")
    fresh_registry.reset()

    res = runner.invoke(app, ["pull", NAME, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["revision"] == sha
    assert {f: d["sha256"] for f, d in doc["files"].items()} == index["models"][NAME]["files"]

    hub.reset_counts()
    model = nfzoo.load(NAME)
    assert hub.count == 0, "a pinned, cached model loads with no request"
    assert model.architecture == "glem" and model.num_classes == 100 and model.image_shape == (3, 32, 32)
    ref = nfzoo.loading.api.load_directory(folder).state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in model.state_dict().items())
    labels = torch.tensor([3, 17, 42, 99])
    x = model.sample(4, labels, temperature=0.7, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 32, 32) and torch.isfinite(x).all() and 0 <= x.min() and x.max() <= 1
    assert model.classify(x).shape == (4, 100)
    res = runner.invoke(app, ["sample", "--model", NAME, "--label", "42", "-n", "2", "--out",
                              str(tmp_path / "class42.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "class42.png").stat().st_size > 0

    # the hub goes away and the cache is empty: one clear line, exit 1
    hub.stop()
    shutil.rmtree(cache_dir(), ignore_errors=True)
    res = runner.invoke(app, ["pull", NAME])
    assert res.exit_code == 1
    line = _one_error_line(res)
    assert NAME in line and ("reach" in line or "unreachable" in line or "connect" in line), line
