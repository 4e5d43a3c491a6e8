"""A small Hugging Face Hub-compatible HTTP server for the tests, on 127.0.0.1 (a free port).

It serves a folder of model repos to the real `huggingface_hub` client:

    ROOT/<org>/<name>/refs/<branch>              the commit sha the branch points at
    ROOT/<org>/<name>/commits/<sha>/<path>       the files of each commit

Routes (the subset of the Hub's API that download and upload use):

    HEAD/GET /<repo>/resolve/<rev>/<path>         X-Repo-Commit, ETag ("<sha256>"), Content-Length, Range
    GET  /api/models/<repo>[/revision/<rev>]      {"id", "sha", "siblings": [{"rfilename"}]}
    GET  /api/models/<repo>/tree/<rev>[/<path>]   [{"type": "file", "path", "size", "oid"}]
    /api/datasets/... and /datasets/<repo>/...     the same routes for dataset repos (one namespace with models)
    /api/spaces/... and /spaces/<repo>/...         and for Space repos (a static site's upload, its files)
    POST /api/repos/create                        {"url"}, 409 if it exists
    POST /api/validate-yaml                       {"errors": [], "warnings": []}
    POST /api/models/<repo>/preupload/<rev>       every file "regular" (no LFS)
    POST /api/models/<repo>/commit/<rev>          ndjson: header, file (base64), deletedFile
    POST /api/models/<repo>/branch/<branch>

404s carry X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound, as the Hub's do. The server
counts requests, can serve a corrupted copy of a file (same size, one byte flipped), can answer every
request with an error status, and can be stopped (the "server down" case).

Hostile or broken hubs, for the hardening tests: `any_revision` answers every revision (even `../../x`)
with main's commit; `bad_sha` answers that string as the commit sha of every revision; `etag` sends that
ETag for every file; `stall_body` sends a file's headers and half its body, then nothing until stopped.
`SilentServer` accepts connections and never answers at all.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

SHA_RE = re.compile(r"^[0-9a-f]{40}$")


def git_oid(data: bytes) -> str:
    """The git blob id of `data` (what the Hub reports as a regular file's oid)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubServer:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: List[Tuple[str, str]] = []
        self.fail_status: Optional[int] = None     # answer every request with this status
        self.corrupted: Set[Tuple[str, str]] = set()  # (repo_id, path) served with a flipped byte
        self.throttle: Optional[float] = None       # seconds of sleep per 1 KiB of a file body (slow links)
        self.any_revision = False                   # resolve any unknown revision to main
        self.bad_sha: Optional[str] = None          # answer this as the commit sha in the model info
        self.etag: Optional[str] = None             # send this ETag for every file
        self.stall_body = False                     # send half of a file's body, then stall until stopped
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._counter = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.hub = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="test-hub", daemon=True)
        self._thread.start()
        self._stopped = False

    # ------------------------------------------------------------ control
    def stop(self) -> None:
        """Stop serving and close the port: later requests fail to connect."""
        if not self._stopped:
            self._stopped = True
            self.stopping.set()
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def count(self) -> int:
        return len(self.requests)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    def corrupt(self, repo_id: str, path: str) -> None:
        self.corrupted.add((repo_id, path))

    # ------------------------------------------------------------ storage
    def _repo(self, repo_id: str) -> Path:
        return self.root / repo_id

    def exists(self, repo_id: str) -> bool:
        return (self._repo(repo_id) / "refs").is_dir()

    def create_repo(self, repo_id: str) -> str:
        """An empty repo with one commit holding .gitattributes (as the Hub makes); returns its sha."""
        (self._repo(repo_id) / "refs").mkdir(parents=True, exist_ok=True)
        attributes = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
        return self.commit(repo_id, {".gitattributes": attributes})

    def resolve(self, repo_id: str, revision: str) -> Optional[str]:
        repo = self._repo(repo_id)
        if SHA_RE.fullmatch(revision) and (repo / "commits" / revision).is_dir():
            return revision
        ref = repo / "refs" / revision
        if ".." not in revision.split("/") and ref.is_file():
            return ref.read_text().strip()
        return self.resolve(repo_id, "main") if self.any_revision and revision != "main" else None

    def files(self, repo_id: str, sha: str) -> Dict[str, Path]:
        base = self._repo(repo_id) / "commits" / sha
        return {p.relative_to(base).as_posix(): p for p in sorted(base.rglob("*")) if p.is_file()}

    def commit(self, repo_id: str, add: Dict[str, bytes], delete: Tuple[str, ...] = (),
               branch: str = "main") -> str:
        """A new commit on `branch` = its parent's files + `add` - `delete`; returns the new sha."""
        if not self.exists(repo_id):
            (self._repo(repo_id) / "refs").mkdir(parents=True, exist_ok=True)
        with self._lock:
            parent = self.resolve(repo_id, branch)
            files = {k: v.read_bytes() for k, v in self.files(repo_id, parent).items()} if parent else {}
            files.update(add)
            for d in delete:
                files.pop(d, None)
            self._counter += 1
            h = hashlib.sha1(f"{repo_id}\n{parent}\n{self._counter}\n".encode())
            for k in sorted(files):
                h.update(k.encode() + b"\0" + hashlib.sha256(files[k]).digest())
            sha = h.hexdigest()
            base = self._repo(repo_id) / "commits" / sha
            for k, data in files.items():
                (base / k).parent.mkdir(parents=True, exist_ok=True)
                (base / k).write_bytes(data)
            base.mkdir(parents=True, exist_ok=True)
            ref = self._repo(repo_id) / "refs" / branch
            ref.parent.mkdir(parents=True, exist_ok=True)
            ref.write_text(sha)
            return sha

    def add_repo(self, repo_id: str, folder: Path, names=("config.json", "model.safetensors", "README.md"),
                 branch: str = "main") -> str:
        """Commit the named files of a local folder (those that exist) to a repo; returns the sha."""
        if not self.exists(repo_id):
            self.create_repo(repo_id)
        add = {n: (Path(folder) / n).read_bytes() for n in names if (Path(folder) / n).is_file()}
        return self.commit(repo_id, add, branch=branch)

    # ------------------------------------------------------------ routing
    def handle(self, h: "_Handler", method: str) -> None:
        url = urlsplit(h.path)
        with self._lock:
            self.requests.append((method, url.path))
        body = b""
        if method == "POST":
            body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        if self.fail_status is not None:
            return h.reply(self.fail_status, {"error": f"test hub answers {self.fail_status}"})
        parts = [unquote(p) for p in url.path.split("/")[1:]]
        query = parse_qs(url.query)
        if parts[:2] in (["api", "datasets"], ["api", "spaces"]) or parts[:1] in (["datasets"], ["spaces"]):
            parts = (["api", "models"] + parts[2:]) if parts[0] == "api" else parts[1:]   # one namespace
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id, rest = f"{parts[2]}/{parts[3]}", parts[4:]
            if method == "GET" and not rest:
                return self._info(h, repo_id, "main")
            if method == "GET" and rest[0] == "revision" and len(rest) == 2:
                return self._info(h, repo_id, rest[1])
            if method == "GET" and rest[0] == "tree" and len(rest) >= 2:
                recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
                return self._tree(h, repo_id, rest[1], "/".join(rest[2:]), recursive)
            if method == "POST" and rest[0] == "preupload" and len(rest) == 2:
                return self._preupload(h, repo_id, rest[1], json.loads(body or b"{}"))
            if method == "POST" and rest[0] == "commit" and len(rest) == 2:
                return self._commit(h, repo_id, rest[1], body)
            if method == "POST" and rest[0] == "branch" and len(rest) >= 2:
                return self._branch(h, repo_id, "/".join(rest[1:]), json.loads(body or b"{}"))
        if method == "POST" and parts == ["api", "repos", "create"]:
            doc = json.loads(body or b"{}")
            repo_id = f"{doc['organization']}/{doc['name']}" if doc.get("organization") else doc["name"]
            kind = doc.get("type") or "model"
            prefix = {"dataset": "datasets/", "space": "spaces/"}.get(kind, "")     # as the Hub's repo URLs
            url = f"{self.url}/{prefix}{repo_id}"
            if self.exists(repo_id):
                return h.reply(409, {"error": f"You already created this {kind} repo", "url": url})
            self.create_repo(repo_id)
            return h.reply(200, {"url": url, "name": repo_id})
        if method == "POST" and parts == ["api", "validate-yaml"]:
            return h.reply(200, {"errors": [], "warnings": []})
        if method in ("GET", "HEAD") and len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(h, method, f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
        return h.reply(404, {"error": f"no route for {method} {url.path}"})

    def _url(self, repo_id: str) -> str:
        return f"{self.url}/{repo_id}"

    def _find(self, h: "_Handler", repo_id: str, revision: str) -> Optional[str]:
        if not self.exists(repo_id):
            h.reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound",
                                                              "X-Error-Message": "Repository not found"})
            return None
        sha = self.resolve(repo_id, revision)
        if sha is None:
            h.reply(404, {"error": f"Invalid rev id: {revision}"}, {"X-Error-Code": "RevisionNotFound",
                                                                   "X-Error-Message": "Invalid rev id"})
        return sha

    def _info(self, h, repo_id, revision):
        sha = self._find(h, repo_id, revision)
        if sha is not None:
            h.reply(200, {"id": repo_id, "modelId": repo_id, "sha": self.bad_sha or sha, "private": False,
                          "siblings": [{"rfilename": p} for p in self.files(repo_id, sha)]})

    def _tree(self, h, repo_id, revision, prefix, recursive):
        sha = self._find(h, repo_id, revision)
        if sha is None:
            return
        out, dirs = [], set()
        for path, f in self.files(repo_id, sha).items():
            if prefix and not path.startswith(prefix.rstrip("/") + "/"):
                continue
            rel = path[len(prefix.rstrip("/")) + 1:] if prefix else path
            if not recursive and "/" in rel:
                d = (prefix.rstrip("/") + "/" if prefix else "") + rel.split("/")[0]
                if d not in dirs:
                    dirs.add(d)
                    out.append({"type": "directory", "path": d, "oid": git_oid(d.encode())})
                continue
            data = f.read_bytes()
            out.append({"type": "file", "path": path, "size": len(data), "oid": git_oid(data)})
        h.reply(200, out)

    def _resolve(self, h, method, repo_id, revision, path):
        sha = self._find(h, repo_id, revision)
        if sha is None:
            return
        f = self.files(repo_id, sha).get(path)
        if f is None:
            return h.reply(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound",
                                                                "X-Error-Message": "Entry not found",
                                                                "X-Repo-Commit": sha})
        data = f.read_bytes()
        headers = {"X-Repo-Commit": sha, "ETag": f'"{self.etag or hashlib.sha256(data).hexdigest()}"',
                   "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if (repo_id, path) in self.corrupted and data:
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
        status, start = 200, 0
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", h.headers.get("Range") or "")
        if m and method == "GET":
            start = int(m.group(1))
            end = int(m.group(2)) if m.group(2) else len(data) - 1
            if start >= len(data):
                return h.reply(416, {"error": "range not satisfiable"},
                               {"Content-Range": f"bytes */{len(data)}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start:end + 1], 206
        h.reply_bytes(status, data, headers, head=(method == "HEAD"))

    def _preupload(self, h, repo_id, revision, doc):
        sha = self._find(h, repo_id, revision)
        if sha is None:
            return
        current = self.files(repo_id, sha)
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                  "oid": git_oid(current[f["path"]].read_bytes()) if f["path"] in current else None}
                 for f in doc.get("files", [])]
        h.reply(200, {"files": files, "commitOid": sha})

    def _commit(self, h, repo_id, revision, body):
        if self._find(h, repo_id, revision) is None:
            return
        add, delete, summary = {}, [], ""
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value.get("summary", "")
            elif key == "file":
                if value.get("encoding") != "base64":
                    return h.reply(400, {"error": "only base64 file content is supported"})
                add[value["path"]] = base64.b64decode(value["content"])
            elif key in ("deletedFile", "deletedFolder"):
                delete.append(value["path"])
            else:
                return h.reply(400, {"error": f"the test hub does not support {key!r} operations"})
        if not summary:
            return h.reply(400, {"error": "empty commit message"})
        sha = self.commit(repo_id, add, tuple(delete), branch=revision)
        h.reply(200, {"commitUrl": f"{self._url(repo_id)}/commit/{sha}", "commitOid": sha,
                      "pullRequestUrl": None, "success": True})

    def _branch(self, h, repo_id, branch, doc):
        start = doc.get("startingPoint") or "main"
        sha = self._find(h, repo_id, start)
        if sha is None:
            return
        ref = self._repo(repo_id) / "refs" / branch
        if ref.is_file():
            return h.reply(409, {"error": f"branch {branch} already exists"})
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(sha)
        h.reply(200, {})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after stop()
    server_version = "nfzoo-test-hub/1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_HEAD(self):
        self.server.hub.handle(self, "HEAD")  # type: ignore[attr-defined]

    def do_GET(self):
        self.server.hub.handle(self, "GET")  # type: ignore[attr-defined]

    def do_POST(self):
        self.server.hub.handle(self, "POST")  # type: ignore[attr-defined]

    def reply(self, status: int, doc, headers: Optional[Dict[str, str]] = None) -> None:
        self.reply_bytes(status, json.dumps(doc).encode(), {"Content-Type": "application/json",
                                                            **(headers or {})})

    def reply_bytes(self, status: int, data: bytes, headers: Dict[str, str], head: bool = False) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if head:
            return
        hub = self.server.hub  # type: ignore[attr-defined]
        if hub.stall_body and headers.get("Content-Type") != "application/json" and len(data) > 1:
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            hub.stopping.wait(120)      # a link that went silent mid-body
            return
        delay = hub.throttle
        if not delay or headers.get("Content-Type") == "application/json":
            self.wfile.write(data)
            return
        for i in range(0, len(data), 1024):
            self.wfile.write(data[i:i + 1024])
            self.wfile.flush()
            time.sleep(delay)


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections, reads what comes, and never answers."""

    def __init__(self):
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.connections: List[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-hub", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections.append(conn)      # kept open, never written to

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self.connections:
            conn.close()
        self._sock.close()
