"""onnxruntime-web for the web export (issue 39): the npm package `onnxruntime-web` at a pinned version, fetched
once from the npm registry into a cache folder and copied into each exported site, so the page loads nothing
from a CDN.

`ort_web_files()` returns the files the page needs (the wasm-only build: `ort.wasm.bundle.min.mjs`, which
bundles the JS glue, and `ort-wasm-simd-threaded.wasm`, the one binary that build loads; it runs single-threaded
where the page is not cross-origin isolated, as a static server leaves it), each checked against its pinned
sha256. They are taken from $XDG_CACHE_HOME/nfzoo/onnxruntime-web/VERSION (~/.cache by default;
$NFZOO_ORT_WEB_CACHE overrides the folder) when there and intact; else the tarball
https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-VERSION.tgz ($NFZOO_NPM_REGISTRY replaces the
registry's address, for a mirror) is downloaded, checked against its pinned sha256 and only those files are
extracted. Anything that cannot be fetched or does not match is an OrtWebUnavailableError (exit code 1) that
says what to do. `python -m nfzoo.export.ortweb` fills the cache (e.g. before going offline).
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path
from typing import Dict, Optional

from nfzoo.errors import NfzooError
from nfzoo.safeio import atomic_write_bytes, sha256_file

ORT_WEB_VERSION = "1.31.1"
TARBALL_SHA256 = "bdccdb9fbb9ab537247c0c734e9b1d2b1b338b4f2a09faa58f0dc1cfa27c312c"
ORT_WEB_FILES: Dict[str, str] = {
    "ort.wasm.bundle.min.mjs": "51bd7168175767324ab0acfcfc4ca94a096a3826e3ebac9ccc4f195eb865f8dd",
    "ort-wasm-simd-threaded.wasm": "4b884c203b0fa48d057be3332c65513ff85aa3c5bddd6946acc0fab7ecda001d",
}
"""The files the page loads (in the tarball's package/dist/), with their sha256."""
ORT_WEB_MODULE = "ort.wasm.bundle.min.mjs"
REGISTRY = "https://registry.npmjs.org"
MAX_TARBALL_BYTES = 128 << 20          # the 1.31.1 tarball is 34.6 MB
TIMEOUT_S = 60.0


class OrtWebUnavailableError(NfzooError):
    """onnxruntime-web's files could not be fetched (or did not match their pinned sha256) and are not cached."""

    exit_code = 1


def cache_dir(version: str = ORT_WEB_VERSION) -> Path:
    """$NFZOO_ORT_WEB_CACHE, else $XDG_CACHE_HOME/nfzoo/onnxruntime-web/VERSION (~/.cache by default)."""
    if os.environ.get("NFZOO_ORT_WEB_CACHE"):
        return Path(os.environ["NFZOO_ORT_WEB_CACHE"])
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "nfzoo" / "onnxruntime-web" / version


def tarball_url(version: str = ORT_WEB_VERSION) -> str:
    """The npm registry's address of the package's tarball ($NFZOO_NPM_REGISTRY for another registry)."""
    registry = (os.environ.get("NFZOO_NPM_REGISTRY") or REGISTRY).rstrip("/")
    return f"{registry}/onnxruntime-web/-/onnxruntime-web-{version}.tgz"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cached(folder: Path) -> Optional[Dict[str, Path]]:
    """The cached files when every one is there and matches its sha256; else None."""
    paths = {name: folder / name for name in ORT_WEB_FILES}
    for name, path in paths.items():
        if not path.is_file() or sha256_file(path) != ORT_WEB_FILES[name]:
            return None
    return paths


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            data = response.read(MAX_TARBALL_BYTES + 1)
    except (OSError, ValueError) as exc:        # URLError, HTTPError, timeouts, a malformed address
        raise OrtWebUnavailableError(
            f"cannot fetch onnxruntime-web {ORT_WEB_VERSION} from {url} ({exc}), and it is not cached in "
            f"{cache_dir()}: connect to the network (or set NFZOO_NPM_REGISTRY to a reachable npm registry) and "
            "export again; `python -m nfzoo.export.ortweb` fills the cache ahead of time") from None
    if len(data) > MAX_TARBALL_BYTES:
        raise OrtWebUnavailableError(f"{url} is larger than {MAX_TARBALL_BYTES} bytes: not onnxruntime-web "
                                     f"{ORT_WEB_VERSION}'s tarball")
    return data


def _extract(data: bytes, url: str) -> Dict[str, bytes]:
    """The needed files from the tarball's package/dist/, each checked against its sha256."""
    got = _sha256(data)
    if got != TARBALL_SHA256:
        raise OrtWebUnavailableError(f"{url} has sha256 {got}, not the pinned {TARBALL_SHA256} of onnxruntime-web "
                                     f"{ORT_WEB_VERSION}: refusing it (a changed package or a bad mirror)")
    out: Dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for name, sha in ORT_WEB_FILES.items():
            member = tar.getmember(f"package/dist/{name}")
            f = tar.extractfile(member) if member.isfile() else None
            if f is None:
                raise OrtWebUnavailableError(f"{url} has no file package/dist/{name}")
            out[name] = f.read()
            if _sha256(out[name]) != sha:
                raise OrtWebUnavailableError(f"package/dist/{name} in {url} does not match its pinned sha256")
    return out


def ort_web_files(fetch: bool = True) -> Dict[str, Path]:
    """onnxruntime-web's files for the page (ORT_WEB_FILES), as paths in the cache, each checked against its
    pinned sha256; fetched from the npm registry first when not cached (and `fetch`). OrtWebUnavailableError
    when they cannot be had."""
    folder = cache_dir()
    paths = _cached(folder)
    if paths is not None:
        return paths
    url = tarball_url()
    if not fetch:
        raise OrtWebUnavailableError(f"onnxruntime-web {ORT_WEB_VERSION} is not cached in {folder} (fetching is off)")
    files = _extract(_download(url), url)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():              # each file written whole, then renamed into place
        atomic_write_bytes(folder / name, data)
    paths = _cached(folder)
    if paths is None:
        raise OrtWebUnavailableError(f"the files written to {folder} do not read back as written")
    return paths


def copy_ort_web(target: Path) -> Dict[str, str]:
    """Copy onnxruntime-web's files into `target` (made if missing); return {file: sha256}."""
    target.mkdir(parents=True, exist_ok=True)
    for name, path in ort_web_files().items():
        shutil.copyfile(path, target / name)
    return dict(ORT_WEB_FILES)


if __name__ == "__main__":
    try:
        print("\n".join(str(p) for p in ort_web_files().values()))
    except OrtWebUnavailableError as exc:
        sys.exit(f"error: {exc}")
