"""Atomic writes and checked reads. A file is written to a temporary name in the same folder, flushed to
disk, then renamed over the target, so a crash never leaves a half-written file under the real name.
Reads of safetensors files detect truncation and corruption and never unpickle anything."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from nfzoo.errors import CorruptFileError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Union[str, os.PathLike], data: bytes) -> None:
    """Write `data` to `path` atomically: a temporary file in the same folder, fsynced, then renamed over
    `path`, so a reader sees the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: Union[str, os.PathLike], obj: Any) -> None:
    """Write `obj` as indented JSON (and a newline) to `path`, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def sha256_file(path: Union[str, os.PathLike], chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def save_tensors(tensors: Dict[str, Any], path: Union[str, os.PathLike], metadata: Optional[Dict[str, str]] = None):
    """Write tensors (detached, contiguous, on the CPU) as a safetensors file, atomically."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(path, save(tensors, metadata=metadata))


def safetensors_header(path: Union[str, os.PathLike]) -> Dict[str, Tuple[Tuple[int, ...], str]]:
    """{name: (shape, dtype code such as "F32")} from a safetensors file's header, without reading tensor
    data. A corrupt header, or a file not exactly as long as its header says, raises CorruptFileError."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(f"weights file {path} is missing.")
    try:
        with safe_open(os.fspath(path), framework="pt") as f:
            out = {}
            for k in f.keys():
                s = f.get_slice(k)
                out[k] = (tuple(int(i) for i in s.get_shape()), str(s.get_dtype()))
            return out
    except Exception as exc:
        raise _corrupt(path, exc) from None


def _corrupt(path: Path, exc: BaseException) -> CorruptFileError:
    reason = (str(exc).strip().splitlines() or [""])[0][:300]
    return CorruptFileError(
        f"{path} is not a valid safetensors file ({type(exc).__name__}: {reason}). It may be truncated "
        "or corrupt: re-create it (retrain, or `nfzoo pull NAME --force`); it was not loaded.")


def load_tensors(path: Union[str, os.PathLike], device: str = "cpu") -> Dict[str, Any]:
    """Load a safetensors file; a truncated or corrupt file raises CorruptFileError (its header is checked
    against the file's length before the data is read)."""
    from safetensors.torch import load

    path = Path(path)
    safetensors_header(path)
    data = path.read_bytes()
    try:
        tensors = load(data)
    except Exception as exc:
        raise _corrupt(path, exc) from None
    return {k: v.to(device) for k, v in tensors.items()}


def read_json(path: Union[str, os.PathLike], what: str = "JSON file") -> Any:
    """A JSON file's content; a missing or malformed file is a ConfigError that names `what`."""
    from nfzoo.errors import ConfigError

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} is missing.")
    try:
        return json.loads(path.read_text())
    except RecursionError:
        raise ConfigError(f"{what} {path} is nested too deeply to be an nfzoo file; it was not loaded.") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read ({exc.strerror or exc}).") from None
    except (ValueError, UnicodeDecodeError) as exc:   # JSONDecodeError, or an integer of > 4300 digits
        raise CorruptFileError(f"{what} {path} is not valid JSON ({exc}); it was not loaded.") from None
