"""Issue 41 item 3: `nfzoo bench serve` times each gallery request kind warm, through the app and called directly,
and the inpainting's two ways of being stopped; a bad model name is exit 2 before anything runs."""
import os

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

import torch  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from nfzoo.registry.plugins import get_registry  # noqa: E402
from nfzoo_gallery.bench import bench_serve  # noqa: E402


def test_bench_serve_times_every_request_kind():
    logs = []
    doc = bench_serve(quick=True, log=logs.append)
    assert doc["bench"] == "serve" and doc["model"] == "inverse-flow-mnist5k" and doc["repeats"] == 3
    assert doc["cpus"] == os.cpu_count() and doc["torch_threads"] == torch.get_num_threads()
    rows = {r["case"]: r for r in doc["rows"]}
    assert list(rows) == ["sample", "interpolate", "inpaint", "score", "inpaint stop check"]
    for r in rows.values():
        assert r["baseline_s"] > 0 and r["candidate_s"] > 0
        assert r["ratio"] == pytest.approx(r["baseline_s"] / r["candidate_s"])
        assert r["candidate_min_s"] <= r["candidate_s"] and r["baseline_min_s"] <= r["baseline_s"]
    for kind in ("sample", "interpolate", "inpaint", "score"):
        assert rows[kind]["candidate"] == "gallery request" and rows[kind]["server_s"] > 0
        assert rows[kind]["form"]["model"] == "inverse-flow-mnist5k"
    assert "'iters': 50, 'lr': 0.2" in rows["inpaint"]["baseline"]
    assert any("loaded inverse-flow-mnist5k" in m for m in logs)


def test_bench_serve_is_registered_and_refuses_a_bad_name():
    from nfzoo_cli.app import build_app

    assert get_registry().get("benchmarks", "serve").plugin
    res = CliRunner().invoke(build_app(), ["bench", "serve", "--model", "inverse-flow-mnist5kk"])
    assert res.exit_code == 2 and "unknown pretrained model 'inverse-flow-mnist5kk'" in res.output
