"""Admin endpoints for A/B routes: list, create, change, report, promote, roll back.

Every route needs the admin token (the same guard as adapter administration); the change
is written to the shared store (``workbench.routing.store``), which every server process re-reads
within a second, and logged in the route audit with the caller's token id.

Status codes: 200 with the route (or report) as JSON; 400 for a malformed change (the
message names the problem; nothing is written); 404 for an unknown route or arm; 409 when
the guarded-rollout rule refuses a promote (the message states the rule and the numbers).
"""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from workbench.api.auth import AdminRoute
from workbench.api.contract import error_responses
from workbench.api.errors import APIError
from workbench.api.models import NAME_MAX, NAME_PATTERN, REF_MAX, REF_PATTERN
from workbench.errors import UnknownNameError, WorkbenchError
from workbench.routing import canary
from workbench.routing.report import manual_policy, promote, promote_decision, route_report
from workbench.routing.routes import BASE_ARM, DEFAULT_MARGIN, Arm, PromoteRefused, Route
from workbench.routing.store import RouteStore, default_store
from workbench.store.chatlog import ChatLog

router = APIRouter(route_class=AdminRoute)
# Route names as the store accepts them; arms and candidates are adapter refs or "base".
RouteName = Annotated[str, Path(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN,
                                description="The route's name (its virtual model name).")]
ARM_PATTERN = f"^__base__$|{REF_PATTERN}"


class ArmBody(BaseModel):
    ref: str = Field(min_length=1, max_length=REF_MAX, pattern=ARM_PATTERN,
                     description="name@version, an adapter name, or 'base'")
    weight: float = Field(ge=0)


class GuardBody(BaseModel):
    """The automatic canary guard (``docs/operations.md``): a sequential test after each feedback."""

    auto: bool = False
    metric: Literal["resolution", "escalation"] = "resolution"
    margin: float = Field(DEFAULT_MARGIN, ge=0, lt=1)
    alpha: float = Field(0.05, gt=0, lt=0.5)
    min_feedback: int = Field(200, ge=1, le=1_000_000)
    steps: list[int] = Field([10, 50, 100], min_length=1, max_length=10)


class RouteCreate(BaseModel):
    name: str = Field(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)
    arms: list[ArmBody]
    incumbent: str | None = Field(None, min_length=1, max_length=REF_MAX, pattern=ARM_PATTERN)
    seed: int = 0
    margin: float = Field(DEFAULT_MARGIN, ge=0, le=1)
    guard: GuardBody | None = None


class RouteUpdate(BaseModel):
    arms: list[ArmBody] | None = None
    incumbent: str | None = Field(None, min_length=1, max_length=REF_MAX, pattern=ARM_PATTERN)
    seed: int | None = None
    margin: float | None = Field(None, ge=0, le=1)
    guard: GuardBody | None = None


class PromoteBody(BaseModel):
    candidate: str | None = Field(None, min_length=1, max_length=REF_MAX, pattern=ARM_PATTERN)


def route_json(route: Route) -> dict:
    return {"object": "route", "name": route.name, **route.to_yaml(),
            "shares": {a.ref: round(route.share(a.ref), 4) for a in route.arms}}


def _store() -> RouteStore:
    return default_store()


def _who(request: Request) -> str:
    return str(getattr(request.state, "caller", None) or "admin")


def _arms(wb, arms: list[ArmBody]) -> tuple[Arm, ...]:
    """Arms must be something this server can serve: base, a model id it lists, or a
    registered version (a candidate may be registered before it is loaded)."""
    known = set(wb.model_ids())
    for arm in arms:
        if arm.ref in (BASE_ARM, "__base__") or arm.ref in known:
            continue
        try:
            wb.registry.resolve(arm.ref)
        except WorkbenchError as exc:
            raise APIError(404, f"Route arm {arm.ref!r} is neither served nor registered: "
                           f"{exc.message}", "arms") from exc
    return tuple(Arm(a.ref, a.weight) for a in arms)


async def _call(fn, *args, **kwargs):
    """Run a store operation off the event loop, mapping its refusals to statuses."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except PromoteRefused as exc:
        raise APIError(409, exc.message, "candidate") from exc
    except UnknownNameError as exc:
        raise APIError(404, exc.message, "name" if exc.kind == "route" else "candidate") from exc


@router.get("/v1/routes")
async def list_routes() -> dict:
    routes = await _call(_store().routes)
    return {"object": "list", "data": [route_json(r) for _, r in sorted(routes.items())]}


@router.get("/v1/routes/{name}", responses=error_responses(404))
async def get_route(name: RouteName) -> dict:
    return route_json(await _call(_store().get, name))


@router.post("/v1/routes", responses=error_responses(404))
async def create_route(body: RouteCreate, request: Request) -> dict:
    arms = _arms(request.app.state.wb, body.arms)
    route = await _call(_store().create, body.name, arms, body.incumbent, body.seed, body.margin,
                        who=_who(request), guard=body.guard.model_dump() if body.guard else None)
    return route_json(route)


@router.put("/v1/routes/{name}", responses=error_responses(404))
async def update_route(name: RouteName, body: RouteUpdate, request: Request) -> dict:
    arms = _arms(request.app.state.wb, body.arms) if body.arms is not None else None
    route = await _call(_store().set, name, arms, body.incumbent, body.margin, body.seed,
                        who=_who(request), guard=body.guard.model_dump() if body.guard else None)
    return route_json(route)


@router.delete("/v1/routes/{name}", responses=error_responses(404))
async def delete_route(name: RouteName, request: Request) -> dict:
    await _call(_store().delete, name, who=_who(request))
    return {"object": "route.deleted", "name": name, "deleted": True}


def _report(name: str) -> dict:
    route = _store().get(name)
    rep = route_report(route)
    out = rep.as_json()
    out["promote"] = {c: promote_decision(rep, c, route.incumbent, manual_policy(route)).__dict__
                      for c in route.candidates}
    out["guard"] = {"policy": route.guard, "status": canary.status(route, ChatLog())}
    return out


@router.get("/v1/routes/{name}/audit", responses=error_responses(404))
async def route_audit(name: RouteName) -> dict:
    """Every change of the route, oldest first: who (a token id, or "guard"), what, and why."""
    store = _store()
    await _call(store.get, name)  # 404 for an unknown route
    return {"object": "list", "data": await run_in_threadpool(store.audit, name)}


@router.get("/v1/routes/{name}/report", responses=error_responses(404))
async def report_route(name: RouteName) -> dict:
    return await _call(_report, name)


@router.post("/v1/routes/{name}/promote", responses=error_responses(404, 409))
async def promote_route(name: RouteName, request: Request, body: PromoteBody | None = None) -> dict:
    route = await _call(promote, _store(), name, body.candidate if body else None,
                        who=_who(request))
    return route_json(route)


@router.post("/v1/routes/{name}/rollback", responses=error_responses(404))
async def rollback_route(name: RouteName, request: Request) -> dict:
    return route_json(await _call(_store().rollback, name, who=_who(request)))
