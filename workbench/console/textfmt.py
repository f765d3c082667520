"""Numbers as people read them: durations, token rates and column titles with units."""
from __future__ import annotations

import math


def human_duration(ms: float | None) -> str:
    """``156448`` -> ``2 min 36 s``; ``1234`` -> ``1.2 s``; ``85`` -> ``85 ms``; None -> ``–``."""
    if ms is None or (isinstance(ms, float) and math.isnan(ms)):
        return "–"
    if ms < 1000:
        return f"{ms:.0f} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    minutes, sec = divmod(round(s), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
