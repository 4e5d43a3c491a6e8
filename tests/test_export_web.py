"""Issue 39: `nfzoo export NAME --format web` writes a static site that samples in the browser (nfzoo.export.web),
with onnxruntime-web fetched from the npm registry at a pinned version and checked (nfzoo.export.ortweb).

In headless Chromium (Debian's /usr/bin/chromium driven by Playwright, as the gallery's browser tests; skipped
without it) against Python's http.server on 127.0.0.1, for every zoo model whose sampler exports (the flows, and
the diffusion models with the DDIM loop in JavaScript; each site exported once, module-scoped): the page loads with
nothing requested from anywhere else and draws its grid and an interpolation; given the numpy runner's noise, its
latents and images equal the runner's within 1e-4; the same seed gives the runner's noise bit for bit (the
portable generator, nfzoo.export.runner.PortableRng) and its images within 1e-4 (a flow, the class-conditional
glem with a row per class, a diffusion model); a latents file the runner writes (--save-latents) decodes to the
runner's images; served with COOP/COEP headers the page is cross-origin isolated and runs one wasm thread per
core. TarFlow's models are refused (exit 2, the reason named). A site folder publishes to a static Space on the
loopback Hub. Without onnxruntime-web (no network and nothing cached) the browser tests skip; the refusals (no
network, a tarball that does not match its pinned sha256) are tested against a loopback server.

`python tests/test_export_web.py [--out docs/results/web/inverse-flow-mnist5k.json]` measures 64 samples of
inverse-flow-mnist5k in the browser, with one thread (a plain static server) and with one per core (the same site
served cross-origin isolated), and with the numpy runner on this machine, and the site's size, with the date, the
core count and the load average, and writes them there (the record docs/results/web/ holds)."""
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
FLOWS = ("inverse-flow-mnist5k", "glow-mnist5k", "glem-mnist5k",      # glem: class-conditional (labels)
         "nsf-mnist5k", "realnvp-mnist5k", "cinc-flow-mnist5k", "quad-flow-mnist5k")
DIFFUSION = ("ddpm-mnist5k", "diffused-flows-mnist5k")                 # DDIM in JavaScript over the U-Net graph
MODELS = FLOWS + DIFFUSION
REFUSED = ("tarflow-mnist5k", "tarflow-mnist5k-cond")                 # the decode graph needs a backward pass
TOL = 1e-4
N = 16
N_DIFFUSION = 4                                                        # x 20 U-Net steps
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:            # no access log on stderr
        pass


class Isolated(Quiet):
    """Every answer with the COOP/COEP headers that make a page cross-origin isolated (SharedArrayBuffer, threads)."""

    def end_headers(self) -> None:
        for k, v in ISOLATION.items():
            self.send_header(k, v)
        super().end_headers()


class StaticServer:
    """Python's http.server serving `root` on a free loopback port, in a thread; `isolated`: with COOP/COEP."""

    def __init__(self, root: Path, isolated: bool = False):
        handler = functools.partial(Isolated if isolated else Quiet, directory=str(root))
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
class Sites:
    """The module's sites under one folder, served on 127.0.0.1 twice: plainly (`url`: one thread) and with COOP/COEP
    headers (`isolated`: cross-origin isolated, threads); each model's site exported on first use, once."""

    def __init__(self, root: Path, url: str, isolated: str):
        self.root, self.url, self.isolated, self._made = root, url, isolated, {}

    def made(self, name: str) -> dict:
        """What export_web said for `name`'s site (exported now if it is not yet)."""
        if name not in self._made:
            self._made[name] = export_site(name, self.root / name)
        return self._made[name]

    def model(self, name: str) -> Path:
        """The site's model/ folder (the export and the numpy runner)."""
        self.made(name)
        return self.root / name / "model"


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    why = have_ort_web()
    if why:
        pytest.skip(f"onnxruntime-web is not available: {why}")
    root = tmp_path_factory.mktemp("web")
    with StaticServer(root) as srv, StaticServer(root, isolated=True) as iso:
        yield Sites(root, srv.url, iso.url)


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


@pytest.fixture(scope="module")
def pages(sites, browser):
    """One page per model (plain server), opened once for the module; checks that nothing was requested from
    anywhere else when the module ends."""
    url = sites.url
    opened: dict = {}
    requests: list = []

    def get(name: str):
        if name not in opened:
            sites.made(name)
            opened[name] = open_page(browser, f"{url}{name}/", requests)
        return opened[name]

    yield get
    for page in opened.values():
        page.close()
    assert [u for u in requests if not u.startswith((url, "data:", "blob:"))] == []


def runner_of(sites, name: str):
    from nfzoo.export.runner import ExportedModel

    return ExportedModel(sites.model(name), threads=1)


def test_site_files(sites):
    made = {name: sites.made(name) for name in (MODELS[0], DIFFUSION[0])}
    root = sites.root
    site = root / MODELS[0]
    assert {"index.html", "app.js", "site.json", "README.md", "model", "ort"} <= {p.name for p in site.iterdir()}
    assert {p.name for p in (site / "ort").iterdir()} == set(made[MODELS[0]]["ort_web"]["files"])
    assert {"prior.onnx", "decode.onnx", "manifest.json"} <= {p.name for p in (site / "model").iterdir()}
    assert {"unet.onnx", "decode.onnx"} <= {p.name for p in (root / DIFFUSION[0] / "model").iterdir()}
    front = (site / "README.md").read_text().split("---")[1]
    assert "sdk: static" in front and "app_file: index.html" in front
    assert made[MODELS[0]]["bytes"] < 20e6
    assert "https://" not in (site / "app.js").read_text()          # nothing from a CDN
    assert made[DIFFUSION[0]]["sampling"].startswith("diffusion") and made[MODELS[0]]["sampling"] == "flow"


@pytest.mark.parametrize("name", MODELS)
def test_browser_matches_the_numpy_runner(sites, pages, name):
    """The page loads from the server alone, draws a grid and an interpolation; the runner's noise in, the
    browser's latents and images equal the numpy runner's within 1e-4 (a diffusion model: the DDIM loop in
    JavaScript over the U-Net graph, 20 steps with eta 1, against the runner's ddim())."""
    page = pages(name)
    assert page.inner_text("#title") == name
    runner = runner_of(sites, name)
    rows = 10 if runner.num_classes else (2 if name in DIFFUSION else 8)   # a class-conditional model: a row a class
    assert page.inner_text("#time").startswith(f"{8 * rows} samples in ")
    assert page.eval_on_selector("#grid", "c => c.width") > 0
    page.fill("#steps", "3")
    page.evaluate("() => { document.getElementById('interp-time').textContent = ''; }")
    page.click("#interpolate")
    page.wait_for_function("() => document.getElementById('interp-time').textContent !== ''")
    assert page.inner_text("#status") == "ready", page.inner_text("#status")
    assert page.eval_on_selector("#interp", "c => c.width") > 0

    if name in DIFFUSION:
        noise = runner.draw_ddim_noise(N_DIFFUSION, seed=3)
        assert len(noise) == 21
        z = runner.ddim(noise)
        images = runner.decode(z)
        got = page.evaluate("(n) => window.nfzoo.sampleFromNoise(n)",
                            [{"data": a.reshape(-1).tolist(), "shape": list(a.shape)} for a in noise])
    else:
        noise = runner.draw_noise(N, seed=3)
        labels = None if runner.num_classes is None else [i % runner.num_classes for i in range(N)]
        z = runner.prior(noise, 0.8, None if labels is None else np.asarray(labels))
        images = runner.decode(z, labels)
        got = page.evaluate("([n, t, y]) => window.nfzoo.sampleFromNoise(n, t, y)", [as_js(noise), 0.8, labels])
    assert tuple(got["shape"]) == images.shape
    assert np.abs(np.asarray(got["z"]).reshape(z.shape) - z).max() <= TOL
    assert np.abs(np.asarray(got["images"]).reshape(images.shape) - images).max() <= TOL
    info = page.evaluate("() => window.nfzoo.info()")
    assert info["ortWeb"] == ORT_WEB_VERSION and info["threads"] == 1 and info["crossOriginIsolated"] is False
    assert page.inner_text("#threads") == "1 thread"


@pytest.mark.parametrize("name", ["inverse-flow-mnist5k", "glem-mnist5k", "ddpm-mnist5k"])
def test_the_same_seed_gives_the_runners_samples(sites, pages, name):
    """The page's generator is the runner's: the same seed draws the same noise bit for bit, and gives the runner's
    latents and images within 1e-4 (glem: a row per class, as the page's grid and the runner's --per-class lay them
    out; ddpm: DDIM's 21 draws from one stream)."""
    page, runner = pages(name), runner_of(sites, name)
    if name in DIFFUSION:
        n, seed, labels = 3, 11, None
        ref = runner.draw_ddim_noise(n, seed=seed)
        got = page.evaluate("([s, n, seed, k]) => window.nfzoo.drawDdimNoise(s, n, seed, k)"
                            ".map(a => Array.from(a.data))", [list(runner.latent_shape), n, seed, len(ref)])
        assert all(np.array_equal(np.asarray(g, dtype=np.float32), r.reshape(-1)) for g, r in zip(got, ref))
    else:
        per = 2 if runner.num_classes else 8
        n, seed = per * (runner.num_classes or 1), 123456789012
        labels = None if runner.num_classes is None else [i // per for i in range(n)]
        ref = runner.draw_noise(n, seed=seed)
        specs = runner.manifest["graphs"]["prior"]["noise"]
        got = page.evaluate("([s, n, seed]) => Object.fromEntries(Object.entries(window.nfzoo.drawNoise(s, n, seed))"
                            ".map(([k, v]) => [k, Array.from(v.data, Number)]))", [specs, n, seed])
        assert got.keys() == ref.keys()
        assert all(np.array_equal(np.asarray(got[k]).astype(ref[k].dtype), ref[k].reshape(-1)) for k in ref)
    z = runner.sample_latents(n, seed=seed, label=labels)
    images = runner.sample(n, seed=seed, label=labels)
    out = page.evaluate("(o) => window.nfzoo.sampleData(o)", {"n": n, "seed": seed, "label": labels})
    assert np.abs(np.asarray(out["z"]).reshape(z.shape) - z).max() <= TOL
    assert np.abs(np.asarray(out["images"]).reshape(images.shape) - images).max() <= TOL
    # the page's own grid for seed 7 (the form, as a user fills it): glem "a row per class", 2 a row, as the
    # runner's --per-class -n 2 lays them out; a flow 8 x 8 at the model's temperature, as sample(64, seed=7)
    if labels is not None:
        page.select_option("#label", "-1")
        page.fill("#count", "2")
    page.fill("#seed", "7")
    page.evaluate("() => { document.getElementById('time').textContent = ''; }")
    page.click("#sample")
    page.wait_for_function("() => document.getElementById('time').textContent !== ''")
    assert page.inner_text("#status") == "ready", page.inner_text("#status")
    grid = page.evaluate("() => ({images: Array.from(window.nfzoo.last.images.data), "
                         "n: window.nfzoo.last.images.dims[0]})")
    k = grid["n"]
    rows = runner.sample(k, seed=7, label=None if labels is None else np.arange(k) // 2)
    assert k == (20 if labels is not None else (16 if name in DIFFUSION else 64))
    assert np.abs(np.asarray(grid["images"]).reshape(rows.shape) - rows).max() <= TOL


def run_runner(model_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """The exported runner as a user runs it: `python model/nfzoo_onnx_runner.py model ...` (no nfzoo import)."""
    import sys

    return subprocess.run([sys.executable, str(model_dir / "nfzoo_onnx_runner.py"), str(model_dir), *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=model_dir.parent)


@pytest.mark.parametrize("name", ["inverse-flow-mnist5k", "glem-mnist5k"])
def test_a_latents_file_from_the_runner_decodes_to_its_images(sites, pages, tmp_path, name):
    """`nfzoo_onnx_runner.py model --seed 5 --save-latents z.npy --out x.npy` (glem: --per-class) writes the
    latents it decoded; the page's "latents from a file" decodes them to x.npy's images within 1e-4. A file
    that is not a latents file is refused on the page with the reason."""
    model_dir = sites.model(name)
    per_class = ["--per-class"] if name == "glem-mnist5k" else []
    res = run_runner(model_dir, "-n", "3", "--seed", "5", *per_class, "--save-latents", str(tmp_path / "z.npy"),
                     "--out", str(tmp_path / "x.npy"))
    assert res.returncode == 0, res.stderr
    z, x = np.load(tmp_path / "z.npy"), np.load(tmp_path / "x.npy")
    runner = runner_of(sites, name)
    assert z.dtype == np.float32 and z.shape == (len(x), *runner.latent_shape)
    labels = np.arange(len(x)) // 3 if per_class else None
    assert np.abs(runner.sample(len(x), seed=5, label=labels) - x).max() == 0     # the same draw as sample()
    page = pages(name)
    if per_class:
        page.select_option("#label", "-1")                # a row per class: the file's 30 latents, 3 a class
    page.evaluate("() => { document.getElementById('latents-time').textContent = ''; }")
    page.set_input_files("#latents-file", str(tmp_path / "z.npy"))
    page.wait_for_function("() => document.getElementById('latents-time').textContent !== ''")
    assert page.inner_text("#status") == "ready", page.inner_text("#status")
    got = page.evaluate("() => ({images: Array.from(window.nfzoo.last.images.data), "
                        "shape: window.nfzoo.last.images.dims})")
    assert tuple(got["shape"]) == x.shape
    assert np.abs(np.asarray(got["images"]).reshape(x.shape) - x).max() <= TOL
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3), dtype=np.float32))
    page.set_input_files("#latents-file", str(tmp_path / "wrong.npy"))
    page.wait_for_function("() => document.getElementById('status').className === 'error'")
    assert "latents must have shape (n, " in page.inner_text("#status")
    res = run_runner(model_dir, "--latents", str(tmp_path / "wrong.npy"), "--out", str(tmp_path / "y.npy"))
    assert res.returncode == 2 and "latents must have shape" in res.stderr


def test_threads_when_the_page_is_cross_origin_isolated(sites, browser):
    """Served with COOP/COEP headers the page is cross-origin isolated: onnxruntime-web runs one wasm thread per
    core (navigator.hardwareConcurrency), the page says how many, and the same seed still gives the runner's
    images within 1e-4; ?threads=1 asks for one."""
    iso, name = sites.isolated, "inverse-flow-mnist5k"
    sites.made(name)
    requests: list = []
    page = open_page(browser, f"{iso}{name}/", requests)
    info = page.evaluate("() => window.nfzoo.info()")
    assert info["crossOriginIsolated"] is True
    assert info["threads"] == info["hardwareConcurrency"] >= 1
    assert page.inner_text("#threads") == f"{info['threads']} thread{'' if info['threads'] == 1 else 's'}"
    about = page.inner_text("#about")
    assert f"{info['threads']} thread" in about and "cross-origin isolated" in about and "not cross" not in about
    runner = runner_of(sites, name)
    out = page.evaluate("() => window.nfzoo.sampleData({n: 8, seed: 4})")
    assert np.abs(np.asarray(out["images"]).reshape(8, *runner.image_shape) - runner.sample(8, seed=4)).max() <= TOL
    page.close()
    one = open_page(browser, f"{iso}{name}/?threads=1", requests)
    assert one.evaluate("() => window.nfzoo.info().threads") == 1
    one.close()
    assert [u for u in requests if not u.startswith((iso, "data:", "blob:"))] == []


@pytest.mark.parametrize("name", REFUSED)
def test_tarflow_is_refused_with_the_reason(tmp_path, name):
    """TarFlow's sampler ends in a denoising step through the flow's gradient (noise_sigma > 0), which an ONNX graph
    does not hold: the web export refuses it before any tracing, exit 2, naming the reason; nothing is left."""
    from typer.testing import CliRunner

    from nfzoo_cli.app import app

    res = CliRunner().invoke(app, ["export", name, "--format", "web", "--out", str(tmp_path / "site")])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "cannot export this model for the browser" in text and "noise_sigma > 0" in text, text
    assert not (tmp_path / "site").exists()


def test_a_site_publishes_to_a_static_space(sites, hub):
    """The export guide's publishing step (publish_site, what `nfzoo push SITE` does): create_repo(repo_type=
    "space", space_sdk="static") and upload_folder put the site on a Space (here the loopback Hub), every file
    as exported; a folder that is not a site is refused (exit 2 on the CLI)."""
    from huggingface_hub import HfApi

    from nfzoo.export.web import publish_site

    sites.made(MODELS[0])
    site = sites.root / MODELS[0]
    doc = publish_site(site, "someone/inverse-flow-web")
    assert doc["url"].endswith("/spaces/someone/inverse-flow-web") and len(doc["revision"]) == 40
    api = HfApi()
    files = set(api.list_repo_files("someone/inverse-flow-web", repo_type="space"))
    local = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    assert local <= files
    got = Path(api.hf_hub_download("someone/inverse-flow-web", "model/manifest.json", repo_type="space"))
    assert got.read_bytes() == (site / "model" / "manifest.json").read_bytes()
    assert hub.requests and all(path.startswith(("/api/", "/spaces/")) for _, path in hub.requests)
    from typer.testing import CliRunner

    from nfzoo_cli.app import app

    res = CliRunner().invoke(app, ["push", str(site), "--repo-id", "someone/inverse-flow-web", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["url"].endswith("/spaces/someone/inverse-flow-web")
    res = CliRunner().invoke(app, ["push", str(site / "ort"), "--repo-id", "someone/x"])
    assert res.exit_code == 2


# ------------------------------------------------------------------------------------ the record
def measure(out: Path, repeats: int = 5, note: str = "") -> dict:
    """64 inverse-flow-mnist5k samples in headless Chromium (median of `repeats` after a warm-up), with one wasm
    thread (a plain static server) and with one per core (the same site served with COOP/COEP headers, cross-origin
    isolated), and with the numpy runner (one thread, the same); the site's size; the date, the machine's core count
    and its load average before and after (another job on the machine slows every number: the record says so);
    written to `out`; a screenshot of the page to docs/gallery/web-export.png."""
    shot = Path(__file__).resolve().parent.parent / "docs" / "gallery" / "web-export.png"
    import tempfile

    from playwright.sync_api import sync_playwright

    from nfzoo.export.runner import ExportedModel

    name = MODELS[0]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        made = export_site(name, Path(tmp) / name)
        runner = ExportedModel(Path(tmp) / name / "model", threads=1)
        runner.sample(64, seed=0)
        numpy_s = []
        for seed in range(repeats):
            t0 = time.perf_counter()
            runner.sample(64, seed=seed)
            numpy_s.append(time.perf_counter() - t0)
        browser_runs = {}
        with StaticServer(Path(tmp)) as srv, StaticServer(Path(tmp), isolated=True) as iso, \
                sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for key, url in (("one_thread", srv.url), ("threads", iso.url)):
                page = open_page(browser, f"{url}{name}/", [])
                page.evaluate("() => window.nfzoo.sample({n: 64, seed: 0}).then(r => r.ms)")
                ms = [page.evaluate(f"() => window.nfzoo.sample({{n: 64, seed: {s}}}).then(r => r.ms)")
                      for s in range(repeats)]
                browser_runs[key] = {"info": page.evaluate("() => window.nfzoo.info()"), "ms": ms}
                if key == "one_thread":
                    page.click("#interpolate")
                    page.wait_for_function("() => document.getElementById('interp-time').textContent !== ''")
                    page.set_viewport_size({"width": 1000, "height": 760})
                    page.screenshot(path=str(shot), full_page=True)     # the export guide shows it
                page.close()
            browser.close()
    load_after = os.getloadavg()
    version = subprocess.run([CHROMIUM or "chromium", "--version"], capture_output=True, text=True).stdout.strip()
    info = browser_runs["one_thread"]["info"]

    def row(key: str) -> dict:
        r = browser_runs[key]
        return {"threads": r["info"]["threads"], "cross_origin_isolated": r["info"]["crossOriginIsolated"],
                "browser_s": statistics.median(r["ms"]) / 1000, "browser_runs_s": [m / 1000 for m in r["ms"]]}

    record = {
        "what": f"64 samples of {name} (prior + decode graphs, default temperature, seeds 0..{repeats - 1}), median "
                f"of {repeats} after a warm-up: in headless Chromium with onnxruntime-web, one wasm thread (a plain "
                "static server) and one per core (the same site served with COOP/COEP headers, cross-origin "
                "isolated); and with the numpy + onnxruntime runner, one thread",
        "command": "python tests/test_export_web.py --out docs/results/web/inverse-flow-mnist5k.json",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": platform.machine(), "nproc": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
        "load_note": "the load average is the machine's 1, 5 and 15 minute run-queue length before and after the "
                     "measurement; where it is near 1 or more on a 2-core machine another job held a core, and "
                     "the threaded numbers are then not what an idle machine gives",
        **({"note": note} if note else {}),
        "chromium": version, "ort_web": info["ortWeb"], "wasm_simd": info["simd"],
        "hardware_concurrency": info["hardwareConcurrency"],
        "one_thread": row("one_thread"), "threads": row("threads"),
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
    ap.add_argument("--note", default="", help="what else ran on the machine, recorded with the numbers")
    args = ap.parse_args()
    print(json.dumps(measure(Path(args.out), note=args.note), indent=2))
