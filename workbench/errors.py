"""Errors meant for users.

Every error raised on bad input derives from :class:`WorkbenchError`. The edges translate
them: the UI turns them into ``gr.Error``, the CLI prints the message and exits with
``exit_code``. Anything else escaping is a bug.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class WorkbenchError(Exception):
    """A problem the user can act on; the message says what and how."""

    exit_code: int = 1

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The request field at fault, when there is one (the API names it in its error).
        self.param = param


class UnknownNameError(WorkbenchError):
    """A name (preset, adapter, suite, scorer, metric...) that is not registered."""

    exit_code = 2

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind, self.name = kind, name
        self.known = sorted(set(known))
        super().__init__(unknown_name_message(kind, name, self.known),
                         param=kind if kind in ("region", "language") else None)


class BusyError(WorkbenchError):
    """The engine queue is full; the caller should retry later."""

    exit_code = 3


class ModelLoadError(WorkbenchError):
    """A model could not be fetched, read or placed on the requested device."""


class MissingExtraError(WorkbenchError):
    """An optional dependency needed for this feature is not installed."""

    def __init__(self, package: str, feature: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install -e '.[{extra}]'"
        )


class AdapterError(WorkbenchError):
    """An adapter is malformed, incompatible or in a state that forbids the operation."""


class SuiteError(WorkbenchError):
    """An eval suite folder or item is malformed."""


class StoreError(WorkbenchError):
    """The results store refused an operation (unknown run, bad state)."""


class InputError(WorkbenchError):
    """A prompt, upload or option is invalid."""


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    """``Unknown scorer 'factz'. Did you mean 'facts'? Known: facts, verdict``."""
    msg = f"Unknown {kind} '{name}'."
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        msg += f" Did you mean '{close[0]}'?"
    msg += " Known: " + (", ".join(known) if known else "(none)")
    return msg


class AuthError(WorkbenchError):
    """Missing or wrong credentials (401), or an action that is off or not allowed (403)."""

    exit_code = 5

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status
