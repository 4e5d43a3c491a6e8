"""Errors become exit codes here, once, for every command: nfzoo's own and those plugins add through
`register_commands` (the app's click group runs each command inside `exit_codes()`, so no command has to
remember a decorator).

- nfzoo's errors (nfzoo.errors.NfzooError): `error: <message>` on stderr, exit with the error's
  `exit_code` (2 bad usage or input, 1 failed while running, 143 preempted).
- click/typer's own (usage errors, typer.Exit, typer.Abort): as click handles them (usage errors exit 2).
- Ctrl-C: `error: interrupted`, exit 130.
- An OSError that escaped (disk full, permission lost mid-run): its one-line message, exit 1.
- Anything else is a bug in nfzoo or a plugin: one line, `internal error: <type>: <first line> (set
  NFZOO_TRACEBACK=1 for the traceback; please report it)`, exit 1. With NFZOO_TRACEBACK=1 the exception
  propagates with its traceback. A user never sees a bare traceback otherwise.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import typer
import typer.core

from .toolkit import fail, one_line

TRACEBACK_ENV = "NFZOO_TRACEBACK"


def _traceback_wanted() -> bool:
    return os.environ.get(TRACEBACK_ENV, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def exit_codes() -> Iterator[None]:
    """Run a command: map what it raises to a message on stderr and an exit code (see the module)."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):   # click's own: it prints and exits
        raise
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except Exception as exc:
        from nfzoo.errors import NfzooError

        if isinstance(exc, NfzooError):
            msg = one_line(str(exc))
            fail(msg, int(getattr(exc, "exit_code", 1)))
        if _traceback_wanted():
            raise
        if isinstance(exc, MemoryError):
            fail("out of memory: the machine could not allocate what this command needs (try smaller "
                 "values: -n, --batch-size, --samples)", 1)
        if isinstance(exc, OSError):
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            fail(f"{exc.strerror or one_line(str(exc)).splitlines()[0]}{where}", 1)
        first = one_line(str(exc)).splitlines()[0]
        fail(f"internal error: {type(exc).__name__}: {first} (set {TRACEBACK_ENV}=1 for the traceback; "
             "please report it)", 1)


class NfzooGroup(typer.core.TyperGroup):
    """The app's click group: every sub-command (a plugin's included) runs inside `exit_codes()`, from
    the parsing of its options to its last line."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command inside `exit_codes()`: errors become exit codes here, for every command, plugins'
        included."""
        with exit_codes():
            return super().invoke(ctx)
