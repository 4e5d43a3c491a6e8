"""Issue 24, part 2: `nfzoo serve`, the gallery's HTTP API (fastapi's TestClient on the real app, real zoo
models). Each feature's happy path gives what the core and the heads compute for the same settings (the same
PNG pixels, the same numbers); bad input (parameters, uploads) answers 4xx with the core's message; uploads are
size-limited; the page and its assets come from the package (no CDN). The browser drives the same app in
test_gallery_browser.py."""
import base64
import io
import socket
import subprocess
import sys

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

import nfzoo  # noqa: E402
import nfzoo_heads  # noqa: E402
from nfzoo.data import load_dataset  # noqa: E402
from nfzoo.errors import UsageError  # noqa: E402
from nfzoo.flows.generation import check_seed, sampling_labels  # noqa: E402
from nfzoo.imageio import grid_png_bytes, single_png_bytes  # noqa: E402
from nfzoo.loading.pretrained import resolve_pretrained  # noqa: E402
from nfzoo_gallery import create_app  # noqa: E402
from nfzoo_gallery.inputs import MAX_UPLOAD_BYTES, safe_name  # noqa: E402
from nfzoo_gallery.zoo import ModelCache, card_html  # noqa: E402
from nfzoo_heads.scoring import bpd_of  # noqa: E402

FLOW = "inverse-flow-mnist5k"          # unconditional, the fastest zoo flow to load
COND = "glem-mnist5k"                  # class-conditional


def fast_reference(model, dataset):
    """The typicality reference on the first 64 training images (the default takes the whole split: tens of
    seconds on a CPU)."""
    x, _ = load_dataset(dataset, "train").batch(torch.arange(64))
    return {"dataset": dataset, "split": "train[:64]", "images": 64, "mean_bpd": float(bpd_of(model, x).mean())}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(capacity=2, reference_fn=fast_reference)) as c:
        yield c


@pytest.fixture(scope="module")
def flow():
    return nfzoo.load(FLOW)


@pytest.fixture(scope="module")
def digits_x():
    return load_dataset("mnist5k", "test").batch(torch.arange(4))[0]


def pixels(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    return np.array(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def png_bytes(x) -> bytes:
    return single_png_bytes(x)


def error_of(resp, status):
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert set(resp.json()) == {"error"}, resp.json()
    return resp.json()["error"]


# --------------------------------------------------------------------------------------- page and zoo
def test_the_page_and_its_assets_come_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="static/app.js"' in page.text and 'href="static/style.css"' in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    for asset, kind in (("static/app.js", "javascript"), ("static/style.css", "text/css")):
        r = client.get("/" + asset)
        assert r.status_code == 200 and kind in r.headers["content-type"]
        assert "http://" not in r.text and "https://" not in r.text      # nothing from elsewhere
    assert "http://" not in page.text and "https://" not in page.text
    assert client.get("/docs").status_code == 404                      # FastAPI's docs pages use a CDN
    assert "no such page: /nope" in error_of(client.get("/nope"), 404)


def test_the_zoo_list_has_the_registry_models_and_their_metrics(client):
    doc = client.get("/api/models").json()
    by_name = {m["name"]: m for m in doc["models"]}
    assert "oracle-mnist5k" not in by_name                             # a classifier, not an image model
    glow = by_name["glow-mnist5k"]
    entry = resolve_pretrained("glow-mnist5k")
    assert glow["usable"] and glow["source"] == "embedded" and glow["dataset"] == "mnist5k"
    assert glow["default_sampling"] == {"sampler": "ancestral", "temperature": 0.7}
    assert glow["headline"] == {"test_bpd": entry.metrics["test_bpd"],
                                "fid": entry.metrics["fid_oracle_ancestral_t0.7"],
                                "recognisable": entry.metrics["recognisable_ancestral_t0.7"]}
    assert by_name[COND]["num_classes"] == 10
    assert by_name["ddpm-mnist5k"]["headline"]["test_bpd_bound"] == \
        resolve_pretrained("ddpm-mnist5k").metrics["test_bpd_bound_mean"]
    assert not by_name["glem-cifar100"]["usable"] and by_name["glem-cifar100"]["source"] == "unpublished"
    one = client.get("/api/models/glow").json()                        # a family name: its default model
    assert one["name"] == "glow-mnist5k"
    assert "<h1>glow-mnist5k</h1>" in one["card_html"] and "<table>" in one["card_html"]
    assert "model-index" not in one["card_html"] and "&lt;!--" not in one["card_html"]   # front matter, comments
    assert "Did you mean: glow-mnist5k" in error_of(client.get("/api/models/glow-mnist5kk"), 404)
    assert "not an image model" in error_of(client.get("/api/models/oracle-mnist5k"), 400)
    for path in ("./zoo", "local-dir:zoo", "hf-hub:nfzoo/glow-mnist5k"):  # a client never names a folder or repo
        assert f"unknown pretrained model {path!r}" in error_of(client.post("/api/sample", data={"model": path}), 404)


def test_a_server_on_loopback_answers_only_loopback_names():
    with TestClient(create_app(allowed_hosts=["127.0.0.1", "localhost"]), base_url="http://127.0.0.1:8000") as c:
        assert c.get("/api/samplers").status_code == 200
        assert c.get("/api/samplers", headers={"host": "localhost:8000"}).status_code == 200
        assert c.get("/api/samplers", headers={"host": "evil.example"}).status_code == 400   # DNS rebinding


def test_a_card_cannot_inject_markup(tmp_path):
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n# m\n<script>alert(1)</script>\n"
                                        "[x](javascript:alert(1))\n<!-- hidden -->\n")

    class Entry:
        path = str(tmp_path)

    html = card_html(Entry())
    assert "<h1>m</h1>" in html and "license" not in html and "hidden" not in html
    assert "<script>" not in html and "&lt;script&gt;" in html and 'href="javascript' not in html


def test_a_test_image_of_the_models_data_set(client, digits_x):
    doc = client.get(f"/api/models/{FLOW}/test-image", params={"index": 2}).json()
    assert doc["dataset"] == "mnist5k" and doc["count"] == 1000 and doc["index"] == 2
    assert doc["label"] == int(load_dataset("mnist5k", "test").labels[2])
    assert np.array_equal(pixels(doc["image"]), (digits_x[2, 0] * 255).round().numpy().astype(np.uint8))
    assert "index must be an integer in [0, 999], got 1000" in \
        error_of(client.get(f"/api/models/{FLOW}/test-image", params={"index": 1000}), 400)


# -------------------------------------------------------------------------------------------- sample
def test_sample_gives_the_images_nfzoo_sample_gives(client, flow):
    r = client.post("/api/sample", data={"model": FLOW, "n": 16, "seed": 3})
    doc = r.json()
    assert r.status_code == 200, doc
    assert (doc["n"], doc["nrow"], doc["seed"], doc["sampler"], doc["temperature"]) == (16, 4, 3, "ancestral", 0.7)
    got = pixels(doc["image"])
    assert got.shape == (4 * 30 + 2, 4 * 30 + 2, 3)                   # 4 x 4 digits of 28 px, 2 px apart
    want = flow.sample(16, generator=torch.Generator().manual_seed(3))   # chunk 0 draws from the seed itself
    assert np.array_equal(got, np.array(Image.open(io.BytesIO(grid_png_bytes(want, 4)))))
    assert got.std() > 10                                               # not a blank grid
    assert doc["seconds"] > 0


def test_sample_a_class_conditional_model(client):
    doc = client.post("/api/sample", data={"model": COND, "n": 4, "label": 3, "seed": 1}).json()
    assert doc["sampler"] == "rfcm" and doc["label"] == 3 and doc["n"] == 4
    m = nfzoo.load(COND)
    y = torch.full((4,), 3)
    want = m.sample(4, y=y, generator=torch.Generator().manual_seed(1))
    assert np.array_equal(pixels(doc["image"]), np.array(Image.open(io.BytesIO(grid_png_bytes(want, 2)))))
    rows = client.post("/api/sample", data={"model": COND, "n": 2, "per_class": "true"}).json()
    assert (rows["n"], rows["nrow"]) == (20, 2)
    assert "--label must be in [0, 9], got 12" in \
        error_of(client.post("/api/sample", data={"model": COND, "label": 12}), 400)


def _core_message(fn, *args, **kwargs):
    with pytest.raises(UsageError) as info:
        fn(*args, **kwargs)
    return str(info.value)


@pytest.mark.parametrize("form,status,message", [
    ({"seed": -1}, 400, lambda m: _core_message(check_seed, -1)),
    ({"seed": 2 ** 32}, 400, lambda m: _core_message(check_seed, 2 ** 32)),
    ({"temperature": "nan"}, 400, lambda m: "temperature: nan is not a finite number"),
    ({"temperature": -0.5}, 400, lambda m: "temperature: -0.5 is below 0; it must be >= 0"),
    ({"temperature": 11}, 400, lambda m: "temperature: 11.0 is above 10; it must be <= 10"),
    ({"label": 3}, 400, lambda m: _core_message(sampling_labels, m, 4, 3, name=FLOW)),
    ({"steps": 20}, 400, lambda m: _core_message(m.get_sampler().check, m, 0.7, steps=20)),
    ({"sampler": "ddimm"}, 404, lambda m: "unknown sampler 'ddimm'. Did you mean: ddim?"),
    ({"sampler": "ddim"}, 400, lambda m: "ddim"),
    ({"n": 0}, 400, lambda m: "n must be an integer in [1, 256], got 0"),
    ({"n": 257}, 400, lambda m: "n must be an integer in [1, 256], got 257"),
    ({"seed": "abc"}, 422, lambda m: "seed: Input should be a valid integer"),
    ({"model": "glow-mnist5"}, 404, lambda m: "unknown pretrained model 'glow-mnist5'. Did you mean: glow-mnist5k"),
    ({"model": "glem-cifar100"}, 409, lambda m: "glem-cifar100"),
])
def test_bad_sample_parameters_get_the_cores_message(client, flow, form, status, message):
    msg = error_of(client.post("/api/sample", data={"model": FLOW, **form}), status)
    assert message(flow) in msg


# ------------------------------------------------------------------------------------- interpolate
def test_interpolate_between_test_images_or_uploads(client, flow, digits_x):
    doc = client.post("/api/interpolate", data={"model": FLOW, "a_index": 0, "b_index": 1, "steps": 6}).json()
    got = pixels(doc["image"])
    assert got.shape == (32, 6 * 30 + 2, 3) and doc["steps"] == 6
    want = nfzoo_heads.interpolate(flow, digits_x[0], digits_x[1], steps=6)
    assert np.array_equal(got, np.array(Image.open(io.BytesIO(grid_png_bytes(want, 6)))))
    assert np.array_equal(got[2:30, 2:30, 0], (digits_x[0, 0] * 255).round().numpy())   # it starts at A
    up = client.post("/api/interpolate", data={"model": FLOW, "a_index": 0, "steps": 6},
                     files={"b_file": ("b.png", png_bytes(digits_x[1]), "image/png")}).json()
    assert np.array_equal(pixels(up["image"]), got)                   # an upload of image 1 = test image 1
    both = client.post("/api/interpolate", data={"model": FLOW, "a_index": 0, "b_index": 1},
                       files={"b_file": ("b.png", png_bytes(digits_x[1]), "image/png")})
    assert "image B: give either a test image index or an uploaded image" in error_of(both, 400)
    assert "steps must be an integer in [2, 64], got 1" in \
        error_of(client.post("/api/interpolate", data={"model": FLOW, "a_index": 0, "b_index": 1, "steps": 1}), 400)


# ----------------------------------------------------------------------------------------- inpaint
def test_inpaint_fills_the_box_and_keeps_every_other_pixel(client, flow, digits_x):
    r = client.post("/api/inpaint", data={"model": FLOW, "index": 0, "box": "8,8,20,20", "iters": 20, "seed": 0})
    doc = r.json()
    assert r.status_code == 200, doc
    assert doc["box"] == [8, 8, 20, 20] and doc["filled_pixels"] == 144
    assert doc["options"] == {"iters": 20, "lr": 0.2}                  # the request's iters, the page's lr
    got, before = pixels(doc["image"]).astype(int), pixels(doc["input"]).astype(int)
    inside = np.zeros_like(got, dtype=bool)
    inside[8:20, 8:20] = True
    assert np.array_equal(got[~inside], before[~inside])               # kept pixels come back bit for bit
    assert np.abs(got[inside] - before[inside]).mean() > 5             # the box was filled anew
    mask = nfzoo_heads.box_mask(digits_x[:1].shape, (8, 8, 20, 20))
    want = nfzoo_heads.inpaint(flow, digits_x[:1], mask, torch.Generator().manual_seed(0), iters=20, lr=0.2)
    assert np.abs(got - pixels("data:image/png;base64," + base64.b64encode(png_bytes(want[0])).decode())).max() <= 1


@pytest.mark.parametrize("form,status,message", [
    ({"steps": 20}, 400, "inpainting (latent) has no option(s) steps"),
    ({"box": "8,8,40,40"}, 400, "the box 8,8,40,40 is not inside the 28x28 image"),
    ({"box": "8,8"}, 400, "--box must be four integers x0,y0,x1,y1"),
    ({"label": 2}, 400, "inverse-flow-mnist5k is unconditional"),
    ({"iters": 5000}, 400, "iters must be an integer in [0, 1000], got 5000"),
    ({"index": None}, 400, "the image: give either a test image index or an uploaded image"),
])
def test_bad_inpaint_requests(client, form, status, message):
    data = {k: v for k, v in {"model": FLOW, "index": 0, "box": "8,8,20,20", **form}.items() if v is not None}
    assert message in error_of(client.post("/api/inpaint", data=data), status)


# ------------------------------------------------------------------------------------------- score
def test_score_gives_the_heads_bpd_and_typicality(client, flow, digits_x):
    assert client.get(f"/api/models/{FLOW}/reference").json() == {"state": "absent"}
    files = [("files", (f"digit{i}.png", png_bytes(digits_x[i]), "image/png")) for i in range(2)]
    doc = client.post("/api/score", data={"model": FLOW, "wait": "true"}, files=files).json()
    ref = fast_reference(flow, "mnist5k")["mean_bpd"]
    assert doc["reference"]["state"] == "ready"
    assert doc["reference"]["reference"]["mean_bpd"] == pytest.approx(ref, rel=1e-6)
    want = nfzoo_heads.score(flow, digits_x[:2], reference_bpd=doc["reference"]["reference"]["mean_bpd"])
    assert [r["name"] for r in doc["records"]] == ["digit0.png", "digit1.png"]
    for got, w in zip(doc["records"], want):
        assert got["bpd"] == pytest.approx(w["bpd"], rel=1e-6)
        assert got["typicality"] == pytest.approx(w["typicality"], rel=1e-5)
        assert got["typicality"] == pytest.approx(abs(got["bpd"] - ref), rel=1e-5)
    assert client.get(f"/api/models/{FLOW}/reference").json()["state"] == "ready"


def test_uploads_are_size_limited_and_checked(client, digits_x):
    big = client.post("/api/score", data={"model": FLOW},
                      files=[("files", ("big.png", b"\0" * (MAX_UPLOAD_BYTES + 1), "image/png"))])
    assert "larger than the gallery's limit of 2 MB (2,097,152 bytes)" in error_of(big, 413)
    chunked = client.post("/api/score", content=iter([b"-" * 2 ** 20] * 3),
                          headers={"content-type": "multipart/form-data; boundary=x"})   # no Content-Length
    assert "larger than the gallery's limit" in error_of(chunked, 413)
    bad = client.post("/api/score", data={"model": FLOW}, files=[("files", ("bad.png", b"not a png", "image/png"))])
    assert "bad.png is not an image file that can be read" in error_of(bad, 400)
    buf = io.BytesIO()
    Image.new("1", (5000, 5000)).save(buf, format="png")                # a few KB that decode to 25 M pixels
    bomb = error_of(client.post("/api/score", data={"model": FLOW},
                                files=[("files", ("../../bomb.png", buf.getvalue(), "image/png"))]), 400)
    assert bomb.startswith("bomb.png claims 5000x5000 pixels, more than the limit") and "nfzoo-serve-" not in bomb
    wrong = Image.fromarray(np.zeros((40, 40), np.uint8))
    buf = io.BytesIO()
    wrong.save(buf, format="png")
    assert "w.png is 40x40 pixels but inverse-flow-mnist5k takes 28x28 with 1 channel(s): resize it first" in \
        error_of(client.post("/api/score", data={"model": FLOW}, files=[("files", ("w.png", buf.getvalue()))]), 400)
    assert safe_name("../../etc/pass wd.png") == "pass_wd.png" and safe_name("") == "upload.png"


# ----------------------------------------------------------------------------------- models, timing
def test_models_load_once_and_the_least_recently_used_goes_first():
    cache = ModelCache(capacity=2)
    try:
        a, t_a = cache.get(FLOW)
        b, _ = cache.get("glow")                                       # a family name: glow-mnist5k
        again, t_again = cache.get(FLOW)
        assert again is a and t_a > 0 and t_again == 0.0
        assert cache.loaded() == ["glow-mnist5k", FLOW]
        cache.get("realnvp-mnist5k")
        assert cache.loaded() == [FLOW, "realnvp-mnist5k"]             # glow was the least recently used
        assert not any(p.requires_grad for p in a.model.parameters())  # served, never trained
    finally:
        cache.close()


def test_stats_report_the_time_per_request_kind(client):
    client.post("/api/sample", data={"model": FLOW, "n": 4})
    doc = client.get("/api/stats").json()
    assert doc["kinds"]["sample"]["count"] >= 1 and doc["kinds"]["sample"]["mean_s"] > 0
    assert FLOW in doc["loaded"] and doc["torch_threads"] == torch.get_num_threads()


# --------------------------------------------------------------------------------------- the command
def test_serve_refuses_a_port_in_use_and_a_bad_host():
    from typer.testing import CliRunner

    from nfzoo_cli.app import build_app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        res = CliRunner().invoke(build_app(), ["serve", "--port", str(port)])
    assert res.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in res.output and "--port 0" in res.output
    res = CliRunner().invoke(build_app(), ["serve", "--host", "no such host.invalid", "--port", "0"])
    assert res.exit_code == 2 and "not an address of this machine" in res.output
    res = CliRunner().invoke(build_app(), ["serve", "--port", "70000"])
    assert res.exit_code == 2
    res = CliRunner().invoke(build_app(), ["serve", "--port", "0", "--preload", "glow-mnist5kk"])
    assert res.exit_code == 2 and "unknown pretrained model 'glow-mnist5kk'" in res.output


def test_nfzoo_serve_port_0_prints_its_address_and_serves(tmp_path):
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "nfzoo_cli", "serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/"), (url, proc.stderr.read())
        assert int(url.rsplit(":", 1)[1].rstrip("/")) > 0
        models = httpx.get(url + "api/models", timeout=30).json()["models"]
        assert FLOW in [m["name"] for m in models]
        assert "nfzoo gallery" in httpx.get(url, timeout=30).text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode in (0, -15)


def test_split_image_reads_a_folder_data_set(tmp_path):
    """A model trained on `folder:DIR` picks its test image from that folder: such a data set has no batch(),
    which split_image once called on every data set (an AttributeError for folder: and torchvision sets)."""
    from PIL import Image

    from nfzoo_gallery.inputs import split_image

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.new("L", (8, 8), color=40 * i + (100 if cls == "b" else 0)).save(tmp_path / cls / f"{i}.png")
    x, label, n = split_image(f"folder:{tmp_path}", 1)      # the test split: one held-out image per class
    assert n == 2 and label == 1 and x.shape == (1, 8, 8)
    assert min(abs(float(x.mean()) - v / 255) for v in (100, 140)) < 1e-6   # one of class b's images
    digits = split_image("digits", 0)
    assert digits[0].shape == (1, 8, 8) and digits[2] > 0
