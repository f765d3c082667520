"""Several servers behind one backend, against fake OpenAI servers: adapters on every replica
as name@version, requests spread and sticky, a lost replica costs no request that had not
streamed, a stream cut mid-answer says so, a restarted replica gets its adapters back."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx
import pytest

from workbench.backends.replicas import ReplicaSet
from workbench.config import engine_preset
from workbench.engine.request import RequestStatus

MSGS = [{"role": "user", "content": "Where is my order?"}]


class FakeServer:
    """An OpenAI-compatible server with runtime LoRA loading, in memory."""

    def __init__(self, name: str) -> None:
        self.name, self.up, self.loras, self.served = name, True, {}, Counter()
        self.cut_mid_stream = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if path.endswith("/models"):
            data = [{"id": "m", "parent": None, "max_model_len": 2048}]
            data += [{"id": n, "parent": "m", "root": p} for n, p in self.loras.items()]
            return httpx.Response(200, json={"data": data})
        body = json.loads(request.content)
        if path.endswith("/load_lora_adapter"):
            self.loras[body["lora_name"]] = body["lora_path"]
            return httpx.Response(200, text="Success")
        if path.endswith("/unload_lora_adapter"):
            self.loras.pop(body["lora_name"], None)
            return httpx.Response(200, text="Success")
        if body["model"] != "m" and body["model"] not in self.loras:
            return httpx.Response(404, json={"error": {"message": "no such model", "code": 404}})
        self.served[body["model"]] += 1
        return self._stream(body["model"])

    def _stream(self, model: str) -> httpx.Response:
        def chunks():
            yield f'data: {{"choices":[{{"delta":{{"content":"{self.name}:{model}"}}}}]}}\n\n'.encode()
            if self.cut_mid_stream:
                raise httpx.ReadError("connection reset")
            yield b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
        return httpx.Response(200, stream=httpx.ByteStream(b"".join(chunks())) if not self.cut_mid_stream
                              else _Cut(chunks()), headers={"content-type": "text/event-stream"})


class _Cut(httpx.SyncByteStream):
    def __init__(self, it) -> None:
        self.it = it

    def __iter__(self):
        yield from self.it


@pytest.fixture
def fleet(tmp_path: Path):
    servers = [FakeServer("r1"), FakeServer("r2")]
    root = tmp_path / "adapters"
    for version in ("v1", "v2"):
        (root / "cs-support" / version).mkdir(parents=True)
    rs = ReplicaSet(["http://r1/v1", "http://r2/v1"], config=engine_preset("test"),
                    adapter_root=Path("/mnt/registry"), registry_root=root,
                    transports=[httpx.MockTransport(s.handler) for s in servers]).start()
    rs.load_adapter("cs-support", root / "cs-support" / "v1")
    yield rs, servers, root
    rs.shutdown()


def answer(rs: ReplicaSet, adapter: str | None = "cs-support", affinity: str | None = None):
    req = rs.submit(MSGS, adapter, max_new_tokens=4, affinity=affinity)
    assert req.done_event.wait(10)
    return req


def test_adapters_go_to_every_replica_under_their_version(fleet) -> None:
    rs, servers, _ = fleet
    for s in servers:
        assert s.loras == {"cs-support@v1": "/mnt/registry/cs-support/v1"}  # the replicas' mount
    assert "cs-support" in rs.adapters
    req = answer(rs)
    assert req.status == RequestStatus.FINISHED and req.output_text.endswith(":cs-support@v1")


def test_requests_spread_and_users_stick(fleet) -> None:
    rs, servers, _ = fleet
    reqs = [rs.submit(MSGS, "cs-support", max_new_tokens=4) for _ in range(8)]
    assert all(r.done_event.wait(10) for r in reqs)
    assert all(s.served["cs-support@v1"] > 0 for s in servers)  # both replicas served some
    sticky = {answer(rs, affinity="customer-7").output_text.split(":")[0] for _ in range(6)}
    assert len(sticky) == 1


def test_a_lost_replica_costs_no_request_that_had_not_streamed(fleet) -> None:
    rs, servers, _ = fleet
    home = answer(rs, affinity="customer-1").output_text.split(":")[0]
    down = next(s for s in servers if s.name == home)
    down.up = False  # killed: connections refused
    req = answer(rs, affinity="customer-1")  # its replica is gone: moved to the other one
    assert req.status == RequestStatus.FINISHED and not req.output_text.startswith(home)
    assert rs.up == {f"http://{down.name}/v1": False, **{f"http://{s.name}/v1": True
                                                         for s in servers if s is not down}}
    assert all(answer(rs).status == RequestStatus.FINISHED for _ in range(4))
    down.up, down.loras = True, {}  # restarted, with no adapters
    rs._probe(next(r for r in rs.replicas if r.base_url == f"http://{down.name}/v1"))
    assert down.loras == {"cs-support@v1": "/mnt/registry/cs-support/v1"} and all(rs.up.values())


def test_a_stream_cut_mid_answer_says_so(fleet) -> None:
    rs, servers, _ = fleet
    for s in servers:
        s.cut_mid_stream = True
    req = answer(rs)
    assert req.status == RequestStatus.FAILED and "failed mid-answer" in req.error
    assert req.output_text  # what had streamed is kept


def test_a_swap_reaches_every_replica_before_the_name_moves(fleet) -> None:
    rs, servers, root = fleet
    rs.replace_adapter("cs-support", root / "cs-support" / "v2", root / "cs-support" / "v1")
    for s in servers:
        assert set(s.loras) == {"cs-support@v2"}
    assert answer(rs).output_text.endswith(":cs-support@v2")
    rs.unload_adapter("cs-support")
    assert all(not s.loras for s in servers) and "cs-support" not in rs.adapters


def test_no_replica_at_all_is_refused() -> None:
    dead = FakeServer("r1")
    dead.up = False
    with pytest.raises(Exception, match="No replica answered"):
        ReplicaSet(["http://r1/v1"], config=engine_preset("test"),
                   transports=[httpx.MockTransport(dead.handler)]).start()


def test_replicas_on_metrics_and_the_monitor(fleet, monkeypatch) -> None:
    from types import SimpleNamespace

    from workbench.telemetry.collector import Telemetry
    from workbench.ui import monitor_tab

    rs, servers, _ = fleet
    servers[1].up = False
    rs._probe(rs.replicas[1])
    tel = Telemetry("m", snapshot=rs.snapshot, versions=dict)
    text = tel.exposition().decode()
    assert 'workbench:replica_up{model_name="m",replica="http://r1/v1"} 1.0' in text
    assert 'workbench:replica_up{model_name="m",replica="http://r2/v1"} 0.0' in text
    assert 'workbench:replica_adapters_loaded{model_name="m",replica="http://r1/v1"} 1.0' in text
    monkeypatch.setattr(monitor_tab, "_canaries", lambda wb: [])  # no route store here
    page = monitor_tab.live_markdown(SimpleNamespace(telemetry=tel, variant_label=str))
    assert "**Replica** http://r1/v1: up · 0 in flight · 1 adapters" in page
    assert "**Replica** http://r2/v1: **down**" in page


def test_the_workbench_keeps_its_versions_on_every_replica(tmp_home, tiny_loaded, make_adapter) -> None:
    """Startup set, hot-swap and rollback through the service reach both replicas; a turn is
    served by the version the workbench picked."""
    from workbench.adapters.registry import Registry
    from workbench.service import lifecycle
    from workbench.service.turns import Face, TurnRequest
    from workbench.service.workbench import Workbench
    from workbench.store.chatlog import ChatLog

    root = tmp_home.parent / "adapters"
    for version, seed in (("v1", 1), ("v2", 2)):
        make_adapter(tiny_loaded, "a1", version, seed=seed, root=root)
    servers = [FakeServer("r1"), FakeServer("r2")]
    rs = ReplicaSet(["http://r1/v1", "http://r2/v1"], config=engine_preset("test"),
                    transports=[httpx.MockTransport(s.handler) for s in servers]).start()
    wb = Workbench(rs.model_info, rs, Registry(root), ChatLog())
    try:
        wb.serve(wb.registry.resolve("a1@v1"))
        assert [set(s.loras) for s in servers] == [{"a1@v1"}, {"a1@v1"}]
        ask = TurnRequest.question("a1", "Where is my order?", Face.API, max_new_tokens=4, user="u1")
        assert wb.serve_turn(ask).text().endswith(":a1@v1")
        lifecycle.load(wb, "a1@v2")  # a hot-swap: every replica first, then the name moves
        assert [set(s.loras) for s in servers] == [{"a1@v2"}, {"a1@v2"}]
        handle = wb.serve_turn(ask)
        assert handle.text().endswith(":a1@v2") and handle.variant.model == "a1@v2"
        lifecycle.rollback(wb, "a1")
        assert [set(s.loras) for s in servers] == [{"a1@v1"}, {"a1@v1"}]
    finally:
        wb.close()
