"""Property-based checks of the served API against its own schema (``/v1/openapi.json``).

Schemathesis reads the schema from the real server (the tiny model, an inference API key and
an admin token, so the auth paths are exercised) and sends generated requests to every
operation: examples, boundary cases (coverage) and fuzzed ones, positive and negative. Every
built-in check runs on every response, as ``--checks all`` would: no 5xx, only declared
statuses, content types and headers, bodies that match their schemas, invalid data refused,
valid data accepted, credentials enforced, undeclared methods answered with 405.
Deterministic: a fixed seed, derandomized generation, no example database.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis", minversion="4.0")

from apihelp import ADMIN, KEY, serve_tiny  # noqa: E402
from schemathesis.checks import CHECKS, load_all_checks  # noqa: E402
from schemathesis.config import SchemathesisConfig  # noqa: E402

pytestmark = pytest.mark.slow

# Fuzzed examples per operation (the coverage phase adds every field's bounds on its own):
# the whole API in about 15 s on 2 cores, well under the 90 s this test may take.
MAX_EXAMPLES = 30
# Operations that refuse some schema-valid bodies with 400, because the refusal needs state
# or file contents no schema can hold: a lora_path outside the allowed roots or without an
# adapter in it, an adapter that is not served, a zip that is not an adapter, a route whose
# arms repeat, whose weights are all 0 or whose guard steps do not rise to 100. Everywhere
# else a schema-valid request gets 2xx, or 401/403/404/409 (credentials, names that do not
# exist, the rollout rule), as schemathesis expects by default.
STATEFUL_400 = r"^/v1/(load_lora_adapter|rollback_lora_adapter|upload_lora_adapter|routes(/\{name\})?)$"
CONFIG = f"""
seed = 20240601
[generation]
max-examples = {MAX_EXAMPLES}
deterministic = true
database = "none"
[auth.openapi.apiKey]
bearer = "{KEY}"
[auth.openapi.adminToken]
bearer = "{ADMIN}"
[[operations]]
include-path-regex = '{STATEFUL_400}'
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409"]
"""
# The schema names the upload's body application/zip; schemathesis sends it as raw bytes.
schemathesis.serializer.alias("application/zip", "application/octet-stream")


def all_checks() -> list:
    load_all_checks()
    return list(CHECKS.get_all())


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy schemas read ``Node._nodeid``, which pytest 9.2 renamed."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture
def api_schema(tmp_home, tiny_loaded, make_adapter) -> Iterator[object]:
    with serve_tiny(tiny_loaded, make_adapter, api_key=KEY) as served:
        config = SchemathesisConfig.from_str(CONFIG)
        yield schemathesis.openapi.from_url(served.v1 + "/openapi.json", config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_api_honours_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=all_checks())
