"""Durations as people write them on a command line ("0.8s", "800ms"), kept free of heavy
imports so a bad value is refused before any model loads."""
from __future__ import annotations

import re

from workbench.errors import InputError

DURATION = re.compile(r"^\s*(-?\d+(?:\.\d*)?|\.\d+)\s*(ms|s|sec|m|min)?\s*$", re.I)
UNIT_S = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0}


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds in "0.8s", "800ms", "1.5", "2 min" (a bare number is seconds); InputError for
    anything else or a duration that is not positive."""
    match = DURATION.match(str(text))
    if not match:
        raise InputError(f"Invalid {what} {text!r}: give a number with a unit, e.g. 0.8s, 800ms "
                         "or 2min (a bare number is seconds).")
    seconds = float(match.group(1)) * UNIT_S[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise InputError(f"Invalid {what} {text!r}: it must be longer than zero.")
    return seconds
