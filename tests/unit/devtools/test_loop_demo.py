"""The loop demo against a served tiny model: every turn counted, the worse arm rolled back by
the guard with no admin call after the route was made."""
from __future__ import annotations

import json

from apihelp import ADMIN, KEY, serve_tiny

from workbench.devtools import loop_demo


def test_loop_demo_rolls_the_worse_arm_back(tmp_home, tiny_loaded, make_adapter, capsys) -> None:
    with serve_tiny(tiny_loaded, make_adapter, api_key=KEY, adapters=("a1", "a2")) as s:
        code = loop_demo.main(["--url", s.url, "--admin-token", ADMIN, "--api-key", KEY,
                               "--incumbent", "a1@v1", "--candidate", "a2@v1", "--requests", "40",
                               "--max-tokens", "2"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert out["turns_counted"] == 40 and out["shares"]["a2@v1"] == 0.0
    assert out["arms"]["a2@v1"]["escalation_rate"] == 1.0 and out["arms"]["a1@v1"]["resolution_rate"] == 1.0
    assert [e["action"] for e in out["audit"]][-1] == "guard-rollback"
