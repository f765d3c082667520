"""The store's regional return policies, and the system prompts grounded on them.

The policy pack (``workbench/data/policy/policies.yaml``) and the FAQ (``workbench/data/policy/faq.yaml``) are
product data: chat grounding, the eval suites and the training-data generator all read them.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from workbench.config import policy_dir
from workbench.errors import UnknownNameError

BASE_SYSTEM_PROMPT = (
    "You are a helpful customer-service agent of Harbor & Pine, an online store shipping "
    "worldwide. Answer briefly and concretely, in the customer's language."
)


def policies_file() -> Path:
    return policy_dir() / "policies.yaml"


def faq_file() -> Path:
    return policy_dir() / "faq.yaml"


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def load_policies(path: Path | None = None) -> dict[str, dict]:
    """Region code -> policy fields; re-read when the store edits the file."""
    path = path or policies_file()
    if not path.exists():
        return {}
    return dict(_load(str(path), path.stat().st_mtime).get("regions", {}))


def region_policy(region: str, path: Path | None = None) -> dict:
    policies = load_policies(path)
    if region not in policies:
        raise UnknownNameError("region", region, policies)
    return policies[region]


def policy_text(region: str, path: Path | None = None) -> str:
    """A compact, prompt-ready description of one region's return policy."""
    p = region_policy(region, path)
    unit = "business days" if p.get("window_unit") == "business_days" else "days"
    excluded = ", ".join(p.get("excluded") or []) or "none"
    refund_unit = "business days" if p.get("refund_unit") == "business_days" else "days"
    lines = [
        f"Return policy for {p.get('name', region)} ({region}):",
        f"- Change-of-mind returns: within {p.get('return_window_days')} {unit} from "
        f"{p.get('window_from', 'delivery')}" + (f", {p['conditions']}" if p.get("conditions") else "") + ".",
        f"- Not returnable for change of mind: {excluded}.",
        f"- Defective items: {p.get('defective')}.",
        f"- Refund issued within {p.get('refund_days')} {refund_unit} after the return is received.",
        f"- Return shipping for change of mind is paid by the {p.get('return_shipping_payer')}.",
    ]
    return "\n".join(lines)

