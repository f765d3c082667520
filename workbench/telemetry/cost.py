"""What serving costs: requests per day per replica, and cost per 1,000 requests at a price per
replica-hour (``WORKBENCH_PRICE_PER_HOUR``, in whatever currency the price is given).

One formula serves the benchmark's sizing and the live views: a replica at ``P`` per hour
that serves ``n`` requests in ``h`` hours costs ``P * h / n * 1000`` per 1,000 requests, that
is ``P / (rate * 3600) * 1000`` at ``rate`` requests per second.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping

from workbench.errors import InputError

PRICE_ENV = "WORKBENCH_PRICE_PER_HOUR"
SECONDS_PER_DAY = 86_400.0
NOT_AVAILABLE = "n/a"


def requests_per_day(requests_per_s: float) -> float:
    return requests_per_s * SECONDS_PER_DAY


def cost_per_1k(price_per_hour: float, requests_per_s: float | None) -> float | None:
    """Cost of 1,000 requests at ``requests_per_s`` on one replica; None with no requests."""
    if not requests_per_s or requests_per_s <= 0:
        return None
    return price_per_hour / (requests_per_s * 3600.0) * 1000.0


def parse_price(text: str, source: str = PRICE_ENV) -> float:
    """A price per hour: a positive finite number; InputError naming ``source`` otherwise."""
    try:
        price = float(text)
    except ValueError:
        price = math.nan
    if not math.isfinite(price) or price <= 0:
        raise InputError(f"{source} must be a positive price per replica-hour, e.g. 2.5; got {text!r}.")
    return price


def price_from_env(environ: Mapping[str, str] | None = None) -> float | None:
    """``WORKBENCH_PRICE_PER_HOUR`` as a number, None when unset or empty."""
    raw = (os.environ if environ is None else environ).get(PRICE_ENV, "").strip()
    return parse_price(raw) if raw else None


def format_cost(cost: float | None) -> str:
    """A cost with enough digits to compare (0.0347, 1.25, 120), "n/a" without one."""
    return NOT_AVAILABLE if cost is None else f"{cost:.3g}" if cost < 1000 else f"{cost:,.0f}"


def cost_line(price_per_hour: float, requests: int, requests_per_s: float | None,
              over: str) -> str:
    """One sentence for a view: the cost per 1,000 requests ``over`` a window."""
    cost = cost_per_1k(price_per_hour, requests_per_s if requests else None)
    if cost is None:
        why = "no requests" if not requests else "no rate yet"
        return f"cost per 1,000 requests {over}: {NOT_AVAILABLE} ({why}) at {price_per_hour:g}/h"
    return (f"cost per 1,000 requests {over}: {format_cost(cost)} at {price_per_hour:g}/h "
            f"({requests:,} requests, {requests_per_day(requests_per_s or 0.0):,.0f}/day at this rate)")
