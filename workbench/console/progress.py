"""Progress that reads well on a terminal and in a log file alike.

On a terminal a tqdm bar redraws one line in place with carriage returns. Sent to a file or a
pipe (nohup, systemd, CI, ``2> train.log``) those carriage returns turn a whole run into one
endless line, so there the same progress is written as whole lines instead: one each time
another ``every_pct`` percent is done or ``every_s`` seconds have passed, and one at the end.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from workbench.console.textfmt import human_duration

Clock = Callable[[], float]


def is_terminal(stream: TextIO | None) -> bool:
    """Whether ``stream`` is an interactive terminal (where redrawing in place works)."""
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or file-like without isatty
        return False


def megabytes(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def _count_text(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else f"{n:.3g}"


class Progress:
    """``with Progress(total, "train", unit="step") as bar: bar.update(1)``.

    ``fmt`` formats counts in lines (e.g. :func:`megabytes`, with ``bytes_bar`` for the
    terminal bar); ``enabled=False`` writes nothing.
    """

    def __init__(self, total: int | None, desc: str, *, unit: str = "", initial: int = 0,
                 stream: TextIO | None = None, enabled: bool = True, every_pct: float = 10.0,
                 every_s: float = 30.0, fmt: Callable[[float], str] | None = None,
                 bytes_bar: bool = False, clock: Clock = time.monotonic) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.stream = stream if stream is not None else sys.stderr
        self.enabled, self.every_pct, self.every_s = enabled, every_pct, every_s
        self.fmt, self.clock = fmt or _count_text, clock
        self.postfix = ""
        self.started = self.last_line = clock()
        self.last_pct_step = self._pct_step()
        self._bar = None
        self._closed = False
        if enabled and is_terminal(self.stream):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc,
                             unit="B" if bytes_bar else (unit or "it"),
                             unit_scale=bytes_bar, file=self.stream, leave=False, dynamic_ncols=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def line_based(self) -> bool:
        return self.enabled and self._bar is None

    def update(self, n: float = 1) -> None:
        self.update_to(self.n + n)

    def update_to(self, done: float) -> None:
        """Set the count to ``done`` (for callers that report totals, not steps)."""
        step, self.n = done - self.n, done
        if self._bar is not None:
            self._bar.update(step)
        elif self.line_based:
            self._maybe_line()

    def set_postfix(self, **values: object) -> None:
        """Figures shown after the count, e.g. ``loss=1.234``."""
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())
        if self._bar is not None:
            self._bar.set_postfix_str(self.postfix, refresh=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        if self.enabled:
            took = human_duration((self.clock() - self.started) * 1000)
            self._write(f"{self.desc}: done, {self._count()} in {took}{self._extra()}")

    # ---- lines --------------------------------------------------------------------------
    def _pct_step(self) -> int:
        if not self.total or self.every_pct <= 0:
            return -1
        return int(100 * self.n / self.total // self.every_pct)

    def _maybe_line(self) -> None:
        now, step = self.clock(), self._pct_step()
        if step <= self.last_pct_step and now - self.last_line < self.every_s:
            return
        if self.total and self.n >= self.total:
            return  # close() writes the final line
        self.last_pct_step, self.last_line = max(step, self.last_pct_step), now
        elapsed = human_duration((now - self.started) * 1000)
        pct = f" ({self.n / self.total:.0%})" if self.total else ""
        self._write(f"{self.desc}: {self._count()}{pct}{self._extra()}, {elapsed} elapsed")

    def _count(self) -> str:
        unit = f" {self.unit}s" if self.unit else ""
        if self.total:
            return f"{self.fmt(self.n)}/{self.fmt(self.total)}{unit}"
        return f"{self.fmt(self.n)}{unit}"

    def _extra(self) -> str:
        return f", {self.postfix}" if self.postfix else ""

    def _write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
            return
        self.stream.write(line + "\n")
        self.stream.flush()


@contextlib.contextmanager
def still_working(desc: str, stream: TextIO | None = None, every_s: float = 15.0,
                  clock: Clock = time.monotonic) -> Iterator[None]:
    """For a step with no count to report (a subprocess): in a log, a line every ``every_s``
    seconds so a long wait does not look like a hang; on a terminal, nothing (the step's own
    bar shows there)."""
    stream = stream if stream is not None else sys.stderr
    if is_terminal(stream):
        yield
        return
    stop, started = threading.Event(), clock()

    def beat() -> None:
        while not stop.wait(every_s):
            stream.write(f"{desc}: still working, "
                         f"{human_duration((clock() - started) * 1000)} elapsed\n")
            stream.flush()

    thread = threading.Thread(target=beat, name="progress-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(1.0)
