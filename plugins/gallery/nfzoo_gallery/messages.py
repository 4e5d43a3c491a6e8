"""What the gallery says of an error: one line (the CLI toolkit's `one_line`), with the server's own paths cut to
their last part (a web client learns nothing of the server's disk: an absolute path of two or more parts is
shown as "<server>/" and its file name)."""
from __future__ import annotations

import re

from nfzoo.errors import NfzooError
from nfzoo_cli.toolkit import one_line

_PATH = re.compile(r"(?<![\w.:/~-])(/(?:[^\s'\"()\[\]<>,;/]+/)+)([^\s'\"()\[\]<>,;/]*)")
_OWN = ("/api/", "/static/")          # the gallery's own routes, not the server's files


def redact_paths(text: str) -> str:
    """`text` with every absolute path of two or more parts (the gallery's routes excepted) cut to its last part."""
    def cut(m: "re.Match[str]") -> str:
        return m.group(0) if m.group(0).startswith(_OWN) else f"<server>/{m.group(2)}"

    return _PATH.sub(cut, text)


def public_message(exc: BaseException) -> str:
    """The message a client is shown for `exc`: an nfzoo error's own, else "internal error: Type: first line"."""
    if isinstance(exc, NfzooError):
        return redact_paths(one_line(str(exc)))
    first = (one_line(str(exc)).splitlines() or [""])[0]
    return redact_paths(f"internal error: {type(exc).__name__}: {first}")
