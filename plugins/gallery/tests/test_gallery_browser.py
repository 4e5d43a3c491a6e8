"""Issue 24, part 2: the gallery in a real browser. The real server (uvicorn, on a free loopback port, in a
thread) and headless Chromium driven by Playwright for Python with the system's browser: the zoo list shows the
models; a sampled grid, an interpolation and an inpainting (a box dragged on the canvas with the mouse) come
back as the images the core and the heads compute; the scores shown for an uploaded PNG are the heads'
numbers; a bad upload shows the server's message. Nothing is requested from anywhere but the server.

Screenshots (docs/gallery/*.png, which the README shows) and the time per request kind, as the server
measured it and as the browser waited for it (request-times.json; recorded, not asserted), go to
$NFZOO_GALLERY_OUT (docs/gallery to refresh the README's), else to a temporary folder.
Without chromium (Debian's package; Playwright's own download is not used) the tests skip."""
import base64
import io
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
pytest.importorskip("fastapi")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium on PATH: the gallery's browser tests need Debian's chromium (apt-get install chromium)",
                allow_module_level=True)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

import nfzoo  # noqa: E402
import nfzoo_heads  # noqa: E402
from nfzoo.data import load_dataset  # noqa: E402
from nfzoo.imageio import grid_png_bytes, single_png_bytes  # noqa: E402
from nfzoo.loading.pretrained import resolve_pretrained  # noqa: E402
from nfzoo_heads.scoring import bpd_of  # noqa: E402

# The README's screenshots and request times are written where NFZOO_GALLERY_OUT says (the README's
# `NFZOO_GALLERY_OUT=docs/gallery pytest plugins/gallery/tests/test_gallery_browser.py`, run from the checkout's
# root, refreshes them); otherwise into a temporary folder, so a test run leaves the checkout as it was.
SHOTS = Path(os.environ["NFZOO_GALLERY_OUT"]) if os.environ.get("NFZOO_GALLERY_OUT") else \
    Path(tempfile.mkdtemp(prefix="nfzoo-gallery-"))
FLOW = "inverse-flow-mnist5k"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 120_000                  # a busy CI machine: generous, only a hang fails
BROWSER_TIMES = {}                 # request kind -> seconds the browser waited (click to image), warm model


def fast_reference(model, dataset):
    """The typicality reference on the first 64 training images (the whole split takes tens of seconds)."""
    x, _ = load_dataset(dataset, "train").batch(torch.arange(64))
    return {"dataset": dataset, "split": "train[:64]", "images": 64, "mean_bpd": float(bpd_of(model, x).mean())}


@pytest.fixture(scope="module")
def server():
    """The gallery on a free loopback port (the command's own socket code), served by uvicorn in a thread."""
    import uvicorn

    from nfzoo_gallery import create_app
    from nfzoo_gallery.cli import bind

    sock = bind("127.0.0.1", 0)
    app = create_app(reference_fn=fast_reference)
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "the gallery server did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/", app
    srv.should_exit = True
    thread.join(timeout=30)
    sock.close()


@pytest.fixture(scope="module")
def page(server):
    url, _ = server
    requests, console = [], []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_page(viewport={"width": 1200, "height": 860})
        pg.set_default_timeout(WAIT_MS)
        playwright_api.expect.set_options(timeout=WAIT_MS)
        pg.on("request", lambda r: requests.append(r.url))
        pg.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: console.append(str(e)))
        pg.goto(url + "#" + FLOW)                                  # the address names the model to show
        pg.wait_for_selector("body[data-ready=true]")
        assert pg.inner_text("#model-title") == FLOW
        yield pg
        browser.close()
    elsewhere = [u for u in requests if not u.startswith((url, "data:", "blob:"))]
    assert elsewhere == []                                        # offline: every request went to the server
    # the only errors the console shows are the 4xx answers the tests asked for (no CSP violation, no JS error)
    assert all("the server responded with a status of 4" in m for m in console), console


@pytest.fixture(scope="module")
def digits_x():
    return load_dataset("mnist5k", "test").batch(torch.arange(4))[0]


def pixels(src: str) -> np.ndarray:
    assert src.startswith("data:image/png;base64,"), src[:40]
    return np.array(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))


def png_array(png: bytes) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(png)))


def shot(page, name: str, element: str = "") -> None:
    """A screenshot for the README: the page, or one element of it (smaller files)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    if element:
        page.locator(element).screenshot(path=str(SHOTS / name))
    else:
        page.screenshot(path=str(SHOTS / name))


def run(page, button: str, image: str, kind: str) -> str:
    """Click `button`, wait until `image` shows a new picture, record how long the browser waited."""
    page.eval_on_selector(image, "el => el.removeAttribute('src')")
    t0 = time.perf_counter()
    page.click(button)
    page.wait_for_selector(f"{image}[src^='data:']")
    BROWSER_TIMES.setdefault(kind, []).append(time.perf_counter() - t0)
    assert page.is_hidden("#error"), page.inner_text("#error")
    return page.get_attribute(image, "src")


def wait_until(page, js: str, timeout: float = WAIT_MS / 1000) -> None:
    """Poll a JS expression from here (Playwright's wait_for_function evaluates strings inside the page, which
    the gallery's Content Security Policy forbids, as it should)."""
    deadline = time.time() + timeout
    while not page.evaluate(js):
        assert time.time() < deadline, f"timed out waiting for {js}"
        time.sleep(0.1)


def choose(page, model: str) -> None:
    page.click(f"#model-list button[data-model='{model}']")
    page.wait_for_selector(f"#model-list button[data-model='{model}'][aria-pressed=true]")
    page.wait_for_selector("#a-preview[src^='data:']", state="attached")
    page.wait_for_selector("#sample-out[src^='data:']", state="attached")    # its first grid, drawn on choosing
    page.wait_for_selector("#sample-go:not([disabled])", state="attached")


def tab(page, name: str) -> None:
    page.click(f".tabs button[data-tab={name}]")


# ------------------------------------------------------------------------------------------------ tests
def test_the_zoo_list_shows_the_models(page, server):
    url, _ = server
    names = page.eval_on_selector_all("#model-list button", "bs => bs.map(b => b.dataset.model)")
    want = [m["name"] for m in page.request.get(url + "api/models").json()["models"]]
    assert names == want and "glow-mnist5k" in names and "oracle-mnist5k" not in names
    entry = resolve_pretrained("glow-mnist5k")
    assert f"bpd {entry.metrics['test_bpd']}" in page.inner_text("#model-list button[data-model='glow-mnist5k']")
    assert page.is_disabled("#model-list button[data-model='glem-cifar100']")       # unpublished weights
    choose(page, "glow-mnist5k")
    assert page.inner_text("#model-title") == "glow-mnist5k" and page.url.endswith("#glow-mnist5k")
    choose(page, FLOW)
    assert page.inner_text("#model-title") == FLOW
    assert pixels(page.get_attribute("#sample-out", "src")).shape == (122, 122, 3)    # a first grid of 16
    page.click("#card summary")
    assert page.inner_text("#card-body h1") == FLOW                                  # the model card
    shot(page, "zoo.png")
    page.click("#card summary")


def test_sample_a_grid(page):
    tab(page, "sample")
    page.fill("#sample-form input[name=n]", "16")
    page.fill("#sample-form input[name=seed]", "3")
    got = pixels(run(page, "#sample-go", "#sample-out", "sample"))
    assert got.shape == (122, 122, 3) and got.std() > 10                            # 4 x 4 digits, not blank
    want = nfzoo.load(FLOW).sample(16, generator=torch.Generator().manual_seed(3))
    assert np.array_equal(got, png_array(grid_png_bytes(want, 4)))
    assert "16 samples, seed 3, ancestral" in page.inner_text("#sample-info")
    page.fill("#sample-form input[name=n]", "64")
    page.fill("#sample-form input[name=seed]", "0")
    assert pixels(run(page, "#sample-go", "#sample-out", "sample")).shape == (242, 242, 3)
    shot(page, "sample.png", "#workbench")


def test_interpolate_between_two_test_images(page, digits_x):
    tab(page, "interpolate")
    page.fill("#interpolate-form input[name=a_index]", "0")
    page.fill("#interpolate-form input[name=b_index]", "1")
    got = pixels(run(page, "#interpolate-go", "#interpolate-out", "interpolate"))
    assert got.shape == (32, 8 * 30 + 2, 3)
    want = nfzoo_heads.interpolate(nfzoo.load(FLOW), digits_x[0], digits_x[1], steps=8)
    assert np.array_equal(got, png_array(grid_png_bytes(want, 8)))
    run(page, "#interpolate-go", "#interpolate-out", "interpolate")
    shot(page, "interpolate.png", "#workbench")


def test_inpaint_a_box_dragged_on_the_canvas(page, digits_x):
    tab(page, "inpaint")
    page.fill("#inpaint-form input[name=index]", "0")
    page.dispatch_event("#inpaint-form input[name=index]", "change")
    wait_until(page, "(() => { const c = document.querySelector('#inpaint-canvas');"
                     " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                     " return d.some((v, i) => i % 4 === 0 && v > 0); })()")          # the digit is drawn
    page.fill("#inpaint-form input[name=box]", "")
    box = page.locator("#inpaint-canvas").bounding_box()
    k = box["width"] / 28                                                             # screen px per image px
    page.mouse.move(box["x"] + 8.5 * k, box["y"] + 6.5 * k)
    page.mouse.down()
    page.mouse.move(box["x"] + 14 * k, box["y"] + 12 * k, steps=4)
    page.mouse.move(box["x"] + 19.5 * k, box["y"] + 17.5 * k, steps=4)
    page.mouse.up()
    assert page.input_value("#inpaint-form input[name=box]") == "8,6,20,18"
    got = pixels(run(page, "#inpaint-go", "#inpaint-out", "inpaint"))
    before = (digits_x[0, 0] * 255).round().numpy().astype(np.uint8)
    inside = np.zeros(before.shape, bool)
    inside[6:18, 8:20] = True
    assert got.shape == (28, 28)
    assert np.array_equal(got[~inside], before[~inside])                             # every other pixel kept
    assert np.abs(got[inside].astype(int) - before[inside]).mean() > 5               # the box is filled anew
    assert "144 pixels filled in box 8,6,20,18 (iters 50, lr 0.2)" in page.inner_text("#inpaint-info")
    run(page, "#inpaint-go", "#inpaint-out", "inpaint")
    shot(page, "inpaint.png", "#workbench")


def test_score_an_uploaded_png(page, tmp_path, digits_x, server):
    tab(page, "score")
    files = []
    for i in range(2):
        files.append(tmp_path / f"digit{i}.png")
        files[-1].write_bytes(single_png_bytes(digits_x[i]))
    page.set_input_files("#score-form input[name=files]", [str(f) for f in files])
    page.click("#score-go")
    # bpd comes at once; typicality when the reference is ready (the page polls, then scores again)
    page.wait_for_selector("#score-table tbody tr[data-typicality]:nth-child(2)")
    rows = page.eval_on_selector_all("#score-table tbody tr", "rs => rs.map(r => ({name: r.dataset.name, "
                                     "bpd: Number(r.dataset.bpd), typ: Number(r.dataset.typicality), "
                                     "cells: Array.from(r.cells).map(c => c.textContent)}))")
    model = nfzoo.load(FLOW)
    ref = fast_reference(model, "mnist5k")["mean_bpd"]
    want = nfzoo_heads.score(model, digits_x[:2], reference_bpd=ref)
    assert [r["name"] for r in rows] == ["digit0.png", "digit1.png"]
    for row, w in zip(rows, want):
        assert row["bpd"] == pytest.approx(w["bpd"], rel=1e-6)
        assert row["typ"] == pytest.approx(w["typicality"], rel=1e-5)
        assert row["cells"][1:] == [str(float(f"{row['bpd']:.4f}")), str(float(f"{row['typ']:.4f}"))]
    assert "typicality reference: mean bpd" in page.inner_text("#score-ref")
    t0 = time.perf_counter()                                                        # warm: reference ready
    page.eval_on_selector("#score-table tbody", "b => b.textContent = ''")
    page.click("#score-go")
    page.wait_for_selector("#score-table tbody tr[data-typicality]:nth-child(2)")
    BROWSER_TIMES.setdefault("score", []).append(time.perf_counter() - t0)
    shot(page, "score.png", "#workbench")


def test_a_bad_upload_shows_the_servers_message(page, tmp_path):
    tab(page, "score")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not a PNG")
    page.set_input_files("#score-form input[name=files]", str(bad))
    page.click("#score-go")
    page.wait_for_selector("#error:not([hidden])")
    assert "bad.png is not an image file that can be read" in page.inner_text("#error")
    shot(page, "error.png")
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (3 * 2 ** 20))
    page.set_input_files("#score-form input[name=files]", str(big))
    page.click("#score-go")
    playwright_api.expect(page.locator("#error")).to_contain_text("larger than the gallery's limit of 2 MB")
    tab(page, "sample")                                                             # a bad parameter, too
    page.fill("#sample-form input[name=temperature]", "-1")
    page.click("#sample-go")
    playwright_api.expect(page.locator("#error")).to_contain_text("temperature: -1.0 is below 0; it must be >= 0")
    page.fill("#sample-form input[name=temperature]", "")


def test_record_the_time_per_request_kind(page, server):
    """Recorded for the README (not asserted: the machine may be busy): the server's seconds of model work per
    request kind and the browser's wait from click to image, warm model."""
    url, _ = server
    stats = page.request.get(url + "api/stats").json()
    doc = {"model": FLOW, "server_seconds": stats["kinds"], "reference_seconds": stats["reference_seconds"],
           "torch_threads": stats["torch_threads"],
           "browser_seconds_warm": {k: round(v[-1], 3) for k, v in BROWSER_TIMES.items()},
           "note": "server_seconds: the model's work in every request of this run (sample: grids of 16 and 64); "
                   "browser_seconds_warm: click to image, the last request of each kind (sample: 64 images; "
                   "interpolate: 8 images; inpaint: one 28x28 digit, 12x12 box, 50 iterations; score: 2 images, "
                   "typicality reference on 64 training images in this test)"}
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "request-times.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))
    assert set(doc["browser_seconds_warm"]) == {"sample", "interpolate", "inpaint", "score"}
