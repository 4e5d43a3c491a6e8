"""Issue 39: `nfzoo export NAME --format web` writes a static site that samples in the browser (nfzoo.export.web),
with onnxruntime-web fetched from the npm registry at a pinned version and checked (nfzoo.export.ortweb).

In headless Chromium (Debian's /usr/bin/chromium driven by Playwright, as the gallery's browser tests; skipped
without it) against Python's http.server on 127.0.0.1: the page loads with nothing requested from anywhere else,
draws its grid and an interpolation, and given the numpy runner's noise (draw_noise) its latents and images equal
the runner's within 1e-4, for inverse-flow-mnist5k, glow-mnist5k and the class-conditional glem-mnist5k (the
sample direction only: each export takes about 15 s of one core; the module about 45 s). Without onnxruntime-web
(no network and nothing cached) the browser tests skip; the refusals (no network, a tarball that does not match
its pinned sha256) are tested against a loopback server.

`python tests/test_export_web.py [--out docs/results/web/inverse-flow-mnist5k.json]` measures 64 samples of
inverse-flow-mnist5k in the browser and with the numpy runner on this machine, and the site's size, and writes them
there (the record docs/results/web/ holds)."""
from __future__ import annotations

import datetime
import functools
import http.server
import json
import os
import platform
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nfzoo.export.ortweb import ORT_WEB_VERSION, OrtWebUnavailableError, ort_web_files

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 120_000
MODELS = ("inverse-flow-mnist5k", "glow-mnist5k", "glem-mnist5k")       # glem: class-conditional (labels)
TOL = 1e-4
N = 16


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:            # no access log on stderr
        pass


class StaticServer:
    """Python's http.server serving `root` on a free loopback port, in a thread."""

    def __init__(self, root: Path):
        handler = functools.partial(Quiet, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "StaticServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def have_ort_web() -> str:
    """'' when onnxruntime-web's files are cached or can be fetched; else why not."""
    try:
        ort_web_files()
    except OrtWebUnavailableError as exc:
        return str(exc)
    return ""


def export_site(name: str, out: Path) -> dict:
    import nfzoo
    from nfzoo.export.web import export_web

    return export_web(nfzoo.load(name), out, name=name)


def open_page(browser, url: str, requests: list):
    page = browser.new_page()
    page.set_default_timeout(WAIT_MS)
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    return page


def as_js(noise: dict) -> dict:
    return {k: {"data": v.reshape(-1).tolist(), "shape": list(v.shape)} for k, v in noise.items()}


# ------------------------------------------------------------------------------------ no browser needed
def test_unreachable_registry_fails_cleanly(tmp_path, monkeypatch):
    """Not cached and the registry unreachable: exit 1 with what to do, before the model's export; nothing written."""
    from typer.testing import CliRunner

    from nfzoo_cli.app import app

    monkeypatch.setenv("NFZOO_ORT_WEB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("NFZOO_NPM_REGISTRY", "http://127.0.0.1:9")
    res = CliRunner().invoke(app, ["export", "inverse-flow-mnist5k", "--format", "web", "--out",
                                   str(tmp_path / "site")])
    assert res.exit_code == 1, res.output
    assert "cannot fetch onnxruntime-web" in res.output and "NFZOO_NPM_REGISTRY" in res.output
    assert not (tmp_path / "site").exists()
    res = CliRunner().invoke(app, ["export", "inverse-flow-mnist5k", "--format", "web", "--direction", "density",
                                   "--out", str(tmp_path / "site")])
    assert res.exit_code == 2 and "sample direction only" in res.output


def test_tarball_with_another_sha256_is_refused(tmp_path, monkeypatch):
    """A registry answering with other bytes than the pinned tarball: refused, nothing cached."""
    tgz = tmp_path / "registry" / "onnxruntime-web" / "-" / f"onnxruntime-web-{ORT_WEB_VERSION}.tgz"
    tgz.parent.mkdir(parents=True)
    tgz.write_bytes(b"not the package")
    monkeypatch.setenv("NFZOO_ORT_WEB_CACHE", str(tmp_path / "cache"))
    with StaticServer(tmp_path / "registry") as srv:
        monkeypatch.setenv("NFZOO_NPM_REGISTRY", srv.url)
        with pytest.raises(OrtWebUnavailableError, match="not the pinned"):
            ort_web_files()
    assert not (tmp_path / "cache").exists()


# ------------------------------------------------------------------------------------ in the browser
@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """Both models' sites, exported once, under one folder served on 127.0.0.1."""
    why = have_ort_web()
    if why:
        pytest.skip(f"onnxruntime-web is not available: {why}")
    root = tmp_path_factory.mktemp("web")
    made = {name: export_site(name, root / name) for name in MODELS}
    with StaticServer(root) as srv:
        yield root, srv.url, made


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH: the web export's browser tests need Debian's chromium "
                    "(apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_site_files(sites):
    root, _, made = sites
    site = root / MODELS[0]
    assert {"index.html", "app.js", "site.json", "README.md", "model", "ort"} <= {p.name for p in site.iterdir()}
    assert {p.name for p in (site / "ort").iterdir()} == set(made[MODELS[0]]["ort_web"]["files"])
    assert {"prior.onnx", "decode.onnx", "manifest.json"} <= {p.name for p in (site / "model").iterdir()}
    front = (site / "README.md").read_text().split("---")[1]
    assert "sdk: static" in front and "app_file: index.html" in front
    assert made[MODELS[0]]["bytes"] < 20e6
    assert "https://" not in (site / "app.js").read_text()          # nothing from a CDN


@pytest.mark.parametrize("name", MODELS)
def test_browser_matches_the_numpy_runner(sites, browser, name):
    """The page loads from the server alone, draws a grid and an interpolation; the runner's noise in, the
    browser's latents and images equal the numpy runner's within 1e-4."""
    from nfzoo.export.runner import ExportedModel

    root, url, _ = sites
    requests: list = []
    page = open_page(browser, f"{url}{name}/", requests)
    assert page.inner_text("#title") == name
    rows = 8 if name != "glem-mnist5k" else 10                    # a class-conditional model: a row per class
    assert page.inner_text("#time").startswith(f"{8 * rows} samples in ")
    assert page.eval_on_selector("#grid", "c => c.width") > 0
    page.click("#interpolate")
    page.wait_for_function("() => document.getElementById('interp-time').textContent !== ''")
    assert page.inner_text("#status") == "ready", page.inner_text("#status")

    runner = ExportedModel(root / name / "model", threads=1)
    noise = runner.draw_noise(N, seed=3)
    labels = None if runner.num_classes is None else [i % runner.num_classes for i in range(N)]
    z = runner.prior(noise, 0.8, None if labels is None else np.asarray(labels))
    images = runner.decode(z, labels)
    got = page.evaluate("([n, t, y]) => window.nfzoo.sampleFromNoise(n, t, y)", [as_js(noise), 0.8, labels])
    assert tuple(got["shape"]) == images.shape
    assert np.abs(np.asarray(got["z"]).reshape(z.shape) - z).max() <= TOL
    assert np.abs(np.asarray(got["images"]).reshape(images.shape) - images).max() <= TOL
    info = page.evaluate("() => window.nfzoo.info()")
    assert info["ortWeb"] == ORT_WEB_VERSION and info["threads"] == 1
    page.close()
    assert [u for u in requests if not u.startswith((url, "data:", "blob:"))] == []


# ------------------------------------------------------------------------------------ the record
def measure(out: Path, repeats: int = 5) -> dict:
    """64 inverse-flow-mnist5k samples in the browser (median of `repeats` after a warm-up) and with the numpy
    runner (one thread, the same), and the site's size; written to `out`; a screenshot of the page to
    docs/gallery/web-export.png (the site serves docs/gallery as gallery/)."""
    shot = Path(__file__).resolve().parent.parent / "docs" / "gallery" / "web-export.png"
    import tempfile

    from playwright.sync_api import sync_playwright

    from nfzoo.export.runner import ExportedModel

    name = MODELS[0]
    with tempfile.TemporaryDirectory() as tmp:
        made = export_site(name, Path(tmp) / name)
        runner = ExportedModel(Path(tmp) / name / "model", threads=1)
        runner.sample(64, seed=0)
        numpy_s = []
        for seed in range(repeats):
            t0 = time.perf_counter()
            runner.sample(64, seed=seed)
            numpy_s.append(time.perf_counter() - t0)
        with StaticServer(Path(tmp)) as srv, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = open_page(browser, f"{srv.url}{name}/", [])
            page.evaluate("() => window.nfzoo.sample({n: 64, seed: 0}).then(r => r.ms)")
            web_ms = [page.evaluate(f"() => window.nfzoo.sample({{n: 64, seed: {s}}}).then(r => r.ms)")
                      for s in range(repeats)]
            info = page.evaluate("() => window.nfzoo.info()")
            page.click("#interpolate")
            page.wait_for_function("() => document.getElementById('interp-time').textContent !== ''")
            page.set_viewport_size({"width": 1000, "height": 760})
            page.screenshot(path=str(shot), full_page=True)     # the export guide shows it
            browser.close()
    version = subprocess.run([CHROMIUM or "chromium", "--version"], capture_output=True, text=True).stdout.strip()
    record = {
        "what": f"64 samples of {name} (prior + decode graphs, default temperature), median of {repeats} after a "
                "warm-up: in headless Chromium with onnxruntime-web, and with the numpy + onnxruntime runner",
        "command": "python tests/test_export_web.py --out docs/results/web/inverse-flow-mnist5k.json",
        "date": datetime.date.today().isoformat(), "machine": platform.machine(), "cpu_count": os.cpu_count(),
        "chromium": version, "ort_web": info["ortWeb"], "wasm_simd": info["simd"], "threads": info["threads"],
        "cross_origin_isolated": info["crossOriginIsolated"], "load_average_1min": os.getloadavg()[0],
        "browser_s": statistics.median(web_ms) / 1000, "browser_runs_s": [m / 1000 for m in web_ms],
        "numpy_runner_s": statistics.median(numpy_s), "numpy_runner_threads": 1,
        "site_bytes": made["bytes"], "goal": {"browser_s": 0.5, "site_bytes": 20_000_000},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=measure.__doc__)
    ap.add_argument("--out", default="docs/results/web/inverse-flow-mnist5k.json")
    print(json.dumps(measure(Path(ap.parse_args().out)), indent=2))
