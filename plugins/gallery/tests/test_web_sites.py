"""Issue 39 item 8: `nfzoo serve --web-sites DIR` serves each model's static browser page (the site `nfzoo export
NAME --format web --out DIR/NAME` writes) under /web/NAME/ and links it from the model's panel. The site is a real
export of inverse-flow-mnist5k (made once, by the gallery's own `build_site`, as `--export-web` makes it); the
routes answer its files byte for byte with the media types a module script and WebAssembly need, under a 'self'
policy that lets the browser compile onnxruntime-web; anything outside the site (.., hidden files, links out,
another model's folder, oversize files) is a 404 that names no server path. With Chromium, the link is followed
in a real browser and the page samples."""
import os
import shutil

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from nfzoo.export.ortweb import OrtWebUnavailableError, ort_web_files  # noqa: E402
from nfzoo_gallery import create_app, websites  # noqa: E402
from nfzoo_gallery.websites import WebSites, build_site  # noqa: E402

FLOW = "inverse-flow-mnist5k"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A sites folder holding inverse-flow-mnist5k's exported page (skipped where onnxruntime-web can be neither
    fetched nor found in its cache)."""
    try:
        ort_web_files()
    except OrtWebUnavailableError as exc:
        pytest.skip(f"onnxruntime-web is not available here: {exc}")
    root = tmp_path_factory.mktemp("sites")
    logs = []
    made = build_site(WebSites(root), "inverse-flow", log=logs.append)       # the family name: its zoo model
    assert made == root / FLOW and (made / "site.json").is_file()
    assert [p.name for p in root.iterdir()] == [FLOW]                           # no temporary folder left
    assert build_site(WebSites(root), FLOW, log=logs.append) is None            # there already: not exported again
    assert "its browser page is in the sites' folder already" in logs[-1]
    return root


@pytest.fixture(scope="module")
def client(root):
    with TestClient(create_app(capacity=1, web_sites=root)) as c:
        yield c


def error_of(resp, status):
    assert resp.status_code == status, (resp.status_code, resp.text)
    return resp.json()["error"]


def test_the_page_and_its_files_are_served_byte_for_byte(client, root):
    site = root / FLOW
    cases = {"": ("index.html", "text/html"), "app.js": ("app.js", "text/javascript"),
             "ort/ort.wasm.bundle.min.mjs": ("ort/ort.wasm.bundle.min.mjs", "text/javascript"),
             "ort/ort-wasm-simd-threaded.wasm": ("ort/ort-wasm-simd-threaded.wasm", "application/wasm"),
             "model/manifest.json": ("model/manifest.json", "application/json"),
             "model/decode.onnx": ("model/decode.onnx", "application/octet-stream")}
    for path, (file, kind) in cases.items():
        r = client.get(f"/web/{FLOW}/{path}")
        assert r.status_code == 200, (path, r.text[:200])
        assert r.headers["content-type"].split(";")[0] == kind, path
        assert r.content == (site / file).read_bytes(), path
    assert client.get("/web/inverse-flow/site.json").json()["model"] == FLOW          # the family name's model
    moved = client.get(f"/web/{FLOW}", follow_redirects=False)
    assert moved.status_code == 307 and moved.headers["location"] == f"/web/{FLOW}/"


def test_the_models_panel_links_its_page(client):
    assert client.get(f"/api/models/{FLOW}").json()["web_site"] == f"web/{FLOW}/"
    assert client.get("/api/models/inverse-flow").json()["web_site"] == f"web/{FLOW}/"
    assert client.get("/api/models/glow-mnist5k").json()["web_site"] is None     # not exported here
    page = client.get("/").text
    assert '<a id="web-link" hidden>' in page
    script = client.get("/static/app.js").text
    assert 'link.setAttribute("href", current.web_site)' in script


def test_a_site_may_compile_webassembly_and_nothing_else_changes(client):
    site_csp = client.get(f"/web/{FLOW}/").headers["content-security-policy"]
    page_csp = client.get("/").headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in site_csp and "default-src 'self'" in site_csp
    assert "wasm-unsafe-eval" not in page_csp and "script-src 'self';" in page_csp
    assert "http" not in site_csp                                                   # nothing from elsewhere
    for r in (client.get(f"/web/{FLOW}/"), client.get("/")):
        assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["%2e%2e/%2e%2e/secret.txt", "..%2f..%2fsecret.txt", "model/%2e%2e/%2e%2e/secret.txt",
                                  ".hidden", "model", "model/", "a%5cb", "a%00b", "/".join(["a"] * 12),
                                  "no-such-file.js"])
def test_nothing_outside_the_site_is_served(client, root, path):
    (root.parent / "secret.txt").write_text("not for the web")
    (root / FLOW / ".hidden").write_text("hidden")
    r = client.get(f"/web/{FLOW}/{path}")
    msg = error_of(r, 404)
    assert "not for the web" not in r.text and "hidden" != r.text and str(root) not in msg


def test_links_out_of_the_site_other_folders_and_big_files_are_refused(client, root, monkeypatch, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("outside")
    link = root / FLOW / "model" / "link.txt"
    link.symlink_to(outside)
    try:
        assert "no such file in inverse-flow-mnist5k's browser page" in error_of(
            client.get(f"/web/{FLOW}/model/link.txt"), 404)
    finally:
        link.unlink()
    # a folder named for another model that holds inverse-flow's site is not that model's page
    other = root / "glow-mnist5k"
    shutil.copytree(root / FLOW, other, ignore=shutil.ignore_patterns("ort", "model"))
    try:
        assert "no browser page of glow-mnist5k" in error_of(client.get("/web/glow-mnist5k/"), 404)
        assert client.get("/api/models/glow-mnist5k").json()["web_site"] is None
    finally:
        shutil.rmtree(other)
    monkeypatch.setattr(websites, "MAX_FILE_BYTES", 1 << 20)                      # the wasm is ~15 MB
    error_of(client.get(f"/web/{FLOW}/ort/ort-wasm-simd-threaded.wasm"), 404)
    assert client.get(f"/web/{FLOW}/app.js").status_code == 200


@pytest.mark.parametrize("name", ["nope", "local-dir:%2Ftmp", "..", "a" * 300])
def test_only_zoo_names_are_served(client, name):
    msg = error_of(client.get(f"/web/{name}/index.html"), 404)
    assert "unknown" in msg or "no such page" in msg


def test_hosts_and_origins_are_checked_on_the_sites_too(root):
    with TestClient(create_app(capacity=1, web_sites=root, allowed_hosts=["127.0.0.1", "localhost"])) as c:
        assert c.get(f"/web/{FLOW}/", headers={"host": "evil.example"}).status_code == 400
        assert c.get(f"/web/{FLOW}/", headers={"host": "127.0.0.1:8000"}).status_code == 200


def test_without_sites_every_web_address_says_how_to_serve_one():
    with TestClient(create_app(capacity=1)) as c:
        msg = error_of(c.get(f"/web/{FLOW}/"), 404)
        assert "nfzoo export inverse-flow-mnist5k --format web" in msg and "--web-sites" in msg
        assert c.get(f"/api/models/{FLOW}").json()["web_site"] is None


def test_the_command_checks_its_web_options(tmp_path):
    from nfzoo_cli.app import build_app

    res = CliRunner().invoke(build_app(), ["serve", "--port", "0", "--web-sites", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "not a folder" in res.output
    res = CliRunner().invoke(build_app(), ["serve", "--port", "0", "--export-web", FLOW])
    assert res.exit_code == 2 and "--export-web needs --web-sites DIR" in res.output
    res = CliRunner().invoke(build_app(), ["serve", "--port", "0", "--web-sites", str(tmp_path),
                                           "--export-web", "glow-mnist5kk"])
    assert res.exit_code == 2 and "unknown pretrained model 'glow-mnist5kk'" in res.output
    assert os.listdir(tmp_path) == []


def test_the_link_opens_a_page_that_samples_in_the_browser(root):
    """In headless Chromium (Debian's; skipped without it): the gallery's page shows the link, the link opens the
    exported page from the gallery, and onnxruntime-web draws its grid under the gallery's policy."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on PATH: the browser test needs Debian's chromium (apt-get install chromium)")
    import threading
    import time

    import uvicorn

    from nfzoo_gallery.cli import bind

    sock = bind("127.0.0.1", 0)
    srv = uvicorn.Server(uvicorn.Config(create_app(capacity=1, web_sites=root), log_level="warning",
                                        access_log=False, lifespan="on"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    requested = []
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                        "--no-first-run"])
            page = browser.new_page()
            page.set_default_timeout(120_000)
            page.on("request", lambda r: requested.append(r.url))
            page.goto(f"{url}#{FLOW}")
            page.wait_for_selector("#web-link:not([hidden])")
            page.click("#web-link")
            page.wait_for_selector("body[data-ready=true]")
            page.wait_for_function("() => document.getElementById('time').textContent !== ''")
            assert page.url == f"{url}web/{FLOW}/"
            assert page.inner_text("#title") == FLOW and page.inner_text("#status") == "ready"
            assert page.inner_text("#time").startswith("64 samples in ")
            browser.close()
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
        sock.close()
    assert [u for u in requested if not u.startswith((url, "data:", "blob:"))] == []
    assert f"{url}web/{FLOW}/ort/ort-wasm-simd-threaded.wasm" in requested
