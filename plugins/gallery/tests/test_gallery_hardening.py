"""Issue 35, the gallery under hostile and heavy use: each numbered probe of the issue is reproduced here.

1. a loopback bind other than 127.0.0.1 / localhost (::1) answered any Host (DNS rebinding); other addresses
   need --allow-remote and a token;
2. POSTs from another site's page ran;
3. an upload was decoded in full before its size was compared with the model's;
4. a request could compute for minutes, kept computing after its client left, and delayed SIGTERM;
5. a very long model name answered 500 (the name was looked up on the server's disk);
6. typicality references started a model copy and a thread per model, and an error showed a server path.
And a bounded load test: concurrent grids and uploads against a real server, its memory measured before and
after (the bounds are stated below and in the README's Security section)."""
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from nfzoo.errors import UnknownNameError, UsageError
from nfzoo.loading.pretrained import resolve_pretrained
from nfzoo_gallery import create_app
from nfzoo_gallery.cli import access
from nfzoo_gallery.zoo import ModelCache

FLOW = "inverse-flow-mnist5k"
SLOW = {"model": "ddpm-mnist5k", "sampler": "ddpm-ancestral", "steps": 1000, "n": 64}   # minutes on a CPU
QUICK_DDPM = {"model": "ddpm-mnist5k", "sampler": "ddim", "steps": 2, "n": 1}
LOAD_MEMORY_MB = 100        # the load test's bound on the server's growth (RSS) over its warm state
LOAD_LATENCY_S = 30         # and on any one request's answer


def no_reference(model, dataset):
    return {"dataset": dataset, "mean_bpd": 1.0}


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(capacity=2, reference_fn=no_reference, request_seconds=1.5)) as c:
        yield c


def error_of(resp, status):
    assert resp.status_code == status, (resp.status_code, resp.text)
    return resp.json()["error"]


def png(size, mode="L") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="png")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------- server process
class Served:
    """`nfzoo serve` in a child process on a free port."""

    def __init__(self, *args, env=None):
        self.proc = subprocess.Popen([sys.executable, "-m", "nfzoo_cli", "serve", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("http://"), (self.url, self.proc.stderr.read() if self.proc.poll() else "")
        self.port = int(self.url.split("]:" if "[" in self.url else ":")[-1].split("/")[0])

    def memory_mb(self, field: str = "VmRSS") -> float:
        """The server's resident memory now (VmRSS) or at its peak so far (VmHWM), in MB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
        return kb / 1024

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture
def served():
    started = []

    def start(*args, **kw):
        s = Served(*args, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def raw_request(host: str, port: int, path: str, headers: dict, family=socket.AF_INET) -> bytes:
    """An HTTP/1.1 GET with exactly these headers (httpx would set Host itself)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect((host, port))
        lines = [f"GET {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()] + ["Connection: close", "", ""]
        s.sendall("\r\n".join(lines).encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


# ------------------------------------------------------------------------------------------------- 1. hosts
def test_every_loopback_bind_checks_the_host(served):
    assert set(access("::1", False)[0]) >= {"::1", "127.0.0.1", "localhost"} and access("::1", False)[1] is None
    assert access("127.0.0.2", False)[1] is None                     # all of 127.0.0.0/8 is loopback
    s = served("--host", "::1")
    assert s.url.startswith("http://[::1]:")
    evil = raw_request("::1", s.port, "/api/samplers", {"Host": "evil.example"}, socket.AF_INET6)
    assert evil.startswith(b"HTTP/1.1 400") and b"evil.example" in evil
    own = raw_request("::1", s.port, "/api/samplers", {"Host": f"[::1]:{s.port}"}, socket.AF_INET6)
    assert own.startswith(b"HTTP/1.1 200")


def test_another_address_needs_allow_remote_and_then_a_token():
    with pytest.raises(UsageError, match="--allow-remote"):
        access("0.0.0.0", False)
    hosts, token = access("0.0.0.0", True)
    assert hosts is None and len(token) >= 24 and token != access("0.0.0.0", True)[1]
    from typer.testing import CliRunner

    from nfzoo_cli.app import build_app

    res = CliRunner().invoke(build_app(), ["serve", "--host", "0.0.0.0", "--port", "0"])
    assert res.exit_code == 2 and "--allow-remote" in res.output
    with TestClient(create_app(capacity=1, token=token)) as c:
        assert "asks for its token" in error_of(c.get("/api/samplers"), 401)
        assert "asks for its token" in error_of(c.get("/api/samplers?token=wrong"), 401)
        first = c.get(f"/?token={token}")
        assert first.status_code == 200 and "HttpOnly" in first.headers["set-cookie"]
        assert c.get("/api/samplers").status_code == 200            # the cookie the page got
    with TestClient(create_app(capacity=1, token=token)) as c:
        assert c.get("/api/samplers", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_served_on_every_address_with_a_token(served):
    s = served("--host", "0.0.0.0", "--allow-remote")
    assert "?token=" in s.url
    base, token = s.url.split("?token=")
    assert httpx.get(base + "api/samplers", timeout=30).status_code == 401
    assert httpx.get(base + "api/samplers", headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code == 200


# ------------------------------------------------------------------------------------------ 2. cross-site
@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                     {"Origin": "http://testserver.evil.example"}])
def test_a_post_from_another_site_is_refused(client, headers):
    resp = client.post("/api/sample", data={"model": FLOW, "n": 1}, headers=headers)
    assert "the gallery answers its own page only" in error_of(resp, 403)
    assert client.get(f"/api/models/{FLOW}/reference?start=true", headers=headers).status_code == 403


def test_the_page_itself_and_non_browser_clients_pass(client):
    own = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert client.post("/api/sample", data={"model": FLOW, "n": 1}, headers=own).status_code == 200
    assert client.post("/api/sample", data={"model": FLOW, "n": 1}).status_code == 200     # curl, scripts
    assert client.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200   # a link to the page


# ------------------------------------------------------------------------------------ 3. decoded too early
def test_an_upload_of_another_size_is_refused_before_it_is_decoded(client, monkeypatch):
    from PIL import ImageFile

    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or real_load(self))
    big = png((4096, 4096))
    assert len(big) < 100_000                                 # ~49 KB that decode to 16.8 M pixels
    msg = error_of(client.post("/api/score", data={"model": FLOW}, files=[("files", ("big.png", big))]), 400)
    assert "big.png is 4096x4096 pixels but inverse-flow-mnist5k takes 28x28" in msg and "not decoded" in msg
    msg = error_of(client.post("/api/inpaint", data={"model": FLOW, "box": "0,0,4,4"},
                               files=[("file", ("big.png", big))]), 400)
    assert "4096x4096 pixels" in msg
    assert decoded == []
    ok = client.post("/api/score", data={"model": FLOW}, files=[("files", ("ok.png", png((28, 28))))])
    assert ok.status_code == 200 and set(decoded) == {(28, 28)}


# ---------------------------------------------------------------------------------------------- 4. budgets
def test_a_request_over_its_budget_stops_frees_the_model_and_is_refused_next_time(client):
    t0 = time.monotonic()
    stopped = client.post("/api/sample", data=SLOW)
    assert time.monotonic() - t0 < 60          # stopped near its 1.5 s budget, not after minutes (loading included)
    assert "took more than its budget of 1.5 s and was stopped" in error_of(stopped, 503)
    assert client.post("/api/sample", data=QUICK_DDPM).status_code == 200      # the model's lock is free
    again = error_of(client.post("/api/sample", data=SLOW), 422)               # refused before computing
    assert "more than the gallery's budget of 1.5 s" in again and "ask for fewer images or steps" in again
    kinds = client.get("/api/stats").json()["kinds"]
    assert kinds["sample"]["stopped"] == {"budget": 1, "refused": 1}
    assert client.get("/api/stats").json()["budgets_s"]["sample"] == 1.5


def test_an_inpainting_over_its_budget_stops_between_iterations_and_is_refused_next_time():
    """Inpainting is checked between its iterations (not by the torch function mode): it still stops at its
    budget, frees the model and is refused at once the next time."""
    slow = {"model": FLOW, "box": "8,8,20,20", "index": 0, "iters": 1000}      # ~10 s on a CPU
    with TestClient(create_app(capacity=1, reference_fn=no_reference, request_seconds=1.5)) as c:
        assert c.post("/api/sample", data={"model": FLOW, "n": 1}).status_code == 200          # loaded
        assert c.get(f"/api/models/{FLOW}/test-image?index=0").status_code == 200           # its data set too
        t0 = time.monotonic()
        stopped = c.post("/api/inpaint", data=slow)
        assert time.monotonic() - t0 < 8                # stopped near its budget, not after its 1000 iterations
        assert "took more than its budget of 1.5 s and was stopped" in error_of(stopped, 503)
        assert c.post("/api/inpaint", data={**slow, "iters": 2}).status_code == 200      # the lock is free
        again = error_of(c.post("/api/inpaint", data=slow), 422)
        assert "more than the gallery's budget of 1.5 s" in again and "fewer iterations or steps" in again
        assert c.get("/api/stats").json()["kinds"]["inpaint"]["stopped"] == {"budget": 1, "refused": 1}


def test_a_client_that_leaves_stops_its_work(served):
    s = served("--request-seconds", "600")
    assert httpx.post(s.url + "api/sample", data=QUICK_DDPM, timeout=120).status_code == 200     # loaded
    body = "&".join(f"{k}={v}" for k, v in SLOW.items())
    with socket.create_connection(("127.0.0.1", s.port), timeout=30) as sock:
        sock.sendall((f"POST /api/sample HTTP/1.1\r\nHost: 127.0.0.1:{s.port}\r\nContent-Type: "
                      f"application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode())
        time.sleep(1.0)
    stats = None
    for _ in range(300):                       # the server notices within its poll (0.1 s) and one torch op
        stats = httpx.get(s.url + "api/stats", timeout=30).json()["kinds"].get("sample", {})
        if stats.get("stopped", {}).get("client"):
            break
        time.sleep(0.1)
    assert stats.get("stopped") == {"client": 1}, stats
    quick = httpx.post(s.url + "api/sample", data=QUICK_DDPM, timeout=60)
    assert quick.status_code == 200, quick.text


def test_sigterm_stops_a_busy_server_in_seconds(served):
    s = served("--request-seconds", "600")
    assert httpx.post(s.url + "api/sample", data=QUICK_DDPM, timeout=120).status_code == 200     # loaded
    answers = []
    t = threading.Thread(target=lambda: answers.append(httpx.post(s.url + "api/sample", data=SLOW, timeout=120)))
    t.start()
    time.sleep(1.5)
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    s.proc.wait(timeout=20)
    stopped_in = time.monotonic() - t0
    t.join(timeout=30)
    assert stopped_in < 10, stopped_in         # was over 2 minutes: the request ran to its end first
    assert s.proc.returncode in (0, -signal.SIGTERM)


# ------------------------------------------------------------------------------------------------ 5. names
@pytest.mark.parametrize("name", ["a" * 300, "x" * 5000, "../../etc/passwd", "local-dir:/", "/tmp", "hf-hub:a/b"])
def test_a_long_or_odd_name_is_a_4xx_and_never_looked_up_on_disk(client, name, monkeypatch):
    import pathlib

    looked = []
    for method in ("is_dir", "exists", "is_file"):
        real = getattr(pathlib.Path, method)
        monkeypatch.setattr(pathlib.Path, method,
                            lambda self, *a, _real=real, **k: (looked.append(str(self)) if name[:50] in str(self)
                                                               else None) or _real(self, *a, **k))
    msg = error_of(client.post("/api/sample", data={"model": name, "n": 1}), 404)
    assert msg.startswith("unknown pretrained model") and "The gallery serves the zoo's models" in msg
    assert error_of(client.get(f"/api/models/{name[:2000]}"), 404)
    assert looked == []
    assert client.post("/api/sample", data={"model": FLOW, "n": 1}).status_code == 200   # the connection goes on


def test_the_core_refuses_a_name_too_long_for_the_disk_as_an_unknown_name():
    with pytest.raises(UnknownNameError, match="unknown pretrained model"):
        resolve_pretrained("a" * 300)            # Path.is_dir raised ENAMETOOLONG before
    from typer.testing import CliRunner

    from nfzoo_cli.app import build_app

    res = CliRunner().invoke(build_app(), ["sample", "--model", "a" * 300, "-n", "1", "--out", "x.png"])
    assert res.exit_code == 2 and "unknown pretrained model" in res.output and "internal error" not in res.output


# ------------------------------------------------------------------------------------- 6. background work
def test_references_run_on_one_worker_one_at_a_time_at_most_capacity_queued():
    running, peak, lock = [0], [0], threading.Lock()
    release = threading.Event()

    def slow(model, dataset):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        release.wait(30)
        with lock:
            running[0] -= 1
        return {"dataset": dataset, "mean_bpd": 1.0}

    others = set(threading.enumerate())
    cache = ModelCache(capacity=2, reference_fn=slow)
    try:
        states = [cache.reference(n, start=True)["state"] for n in
                  ("glow-mnist5k", "realnvp-mnist5k", "nsf-mnist5k", "quad-flow-mnist5k")]
        assert states[:2] == ["computing", "computing"] and states[2:] == ["busy", "busy"]
        assert "at most 2" in cache.reference("nsf-mnist5k", start=True)["error"]
        workers = [t for t in set(threading.enumerate()) - others if t.name.startswith("nfzoo-reference")]
        assert len(workers) == 1
        release.set()
        assert cache.reference("glow-mnist5k", wait=30)["state"] == "ready"
        assert cache.reference("realnvp-mnist5k", wait=30)["state"] == "ready"
        assert peak[0] == 1 and len(cache.loaded()) <= 2
        assert cache.reference("nsf-mnist5k", start=True, wait=30)["state"] == "ready"   # room again
    finally:
        release.set()
        cache.close()


def test_an_error_shows_no_server_path():
    def failing(model, dataset):
        raise UsageError("cannot read /srv/private/nfzoo-data/mnist5k/train.npz: permission denied")

    cache = ModelCache(capacity=1, reference_fn=failing)
    try:
        ref = cache.reference(FLOW, start=True, wait=30)
        assert ref["state"] == "failed" and "/srv/private" not in ref["error"]
        assert "<server>/train.npz: permission denied" in ref["error"]
    finally:
        cache.close()


def test_close_stops_a_reference_under_way_at_its_next_torch_operation():
    import torch

    started = threading.Event()

    def forever(model, dataset):
        started.set()
        while True:
            torch.zeros(1) + 1                   # a torch operation: the stop event is checked here

    others = set(threading.enumerate())
    cache = ModelCache(capacity=1, reference_fn=forever)
    cache.reference(FLOW, start=True)
    assert started.wait(60)
    worker = next(t for t in set(threading.enumerate()) - others if t.name.startswith("nfzoo-reference"))
    cache.close()
    worker.join(timeout=10)
    assert not worker.is_alive()


# ------------------------------------------------------------------------------------------------ load test
def test_load_concurrent_grids_and_uploads_hold_memory_and_latency(served):
    """8 clients at once, twice: 3 grids of 64 samples, 4 inpaintings of uploads claiming 4096 x 4096 pixels
    (refused), 1 interpolation between two uploads. Every answer is right; none takes over LOAD_LATENCY_S; the
    server's peak memory (VmHWM) and its memory after (VmRSS) grow by under LOAD_MEMORY_MB over its warm state
    (the same load once with ordinary uploads). Before, each 4096 x 4096 upload was decoded (~140 MB)."""
    s = served("--threads", "1")
    big, small = png((4096, 4096)), png((28, 28))
    results = []

    def one(kind, status):
        t0 = time.monotonic()
        if kind == "grid":
            r = httpx.post(s.url + "api/sample", data={"model": FLOW, "n": 64, "seed": 0}, timeout=120)
        elif kind == "big":
            r = httpx.post(s.url + "api/inpaint", data={"model": FLOW, "box": "0,0,8,8", "iters": 5},
                           files=[("file", ("big.png", big))], timeout=120)
        else:
            r = httpx.post(s.url + "api/interpolate", data={"model": FLOW, "steps": 8},
                           files=[("a_file", ("a.png", small)), ("b_file", ("b.png", small))], timeout=120)
        results.append((kind, r.status_code == status, time.monotonic() - t0, r.text[:200]))

    def round_of(jobs):
        threads = [threading.Thread(target=one, args=job) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)

    round_of([("grid", 200)] * 3 + [("small", 200)] * 5)          # warm: the same load, ordinary uploads
    before, peak_before = s.memory_mb(), s.memory_mb("VmHWM")
    results.clear()
    for _ in range(2):
        round_of([("grid", 200)] * 3 + [("big", 400)] * 4 + [("small", 200)] * 1)
    after, peak = s.memory_mb(), s.memory_mb("VmHWM")
    assert len(results) == 16 and all(ok for _, ok, _, _ in results), results
    slowest = max(sec for _, _, sec, _ in results)
    print(f"load: RSS {before:.0f} -> {after:.0f} MB, peak {peak_before:.0f} -> {peak:.0f} MB, slowest answer "
          f"{slowest:.2f} s")
    assert slowest < LOAD_LATENCY_S
    assert peak - peak_before < LOAD_MEMORY_MB and after - before < LOAD_MEMORY_MB, (before, after, peak_before, peak)
