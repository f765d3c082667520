"""Admin endpoints for A/B routes: list, create, change, report, promote, roll back.

Every route needs the admin token (the same guard as adapter administration); the change
is written to ``WORKBENCH_HOME/routes.yaml``, which every server process re-reads on its next
request, and logged in the routes audit log with the caller's token id.

Status codes: 200 with the route (or report) as JSON; 400 for a malformed change (the
message names the problem; nothing is written); 404 for an unknown route or arm; 409 when
the guarded-rollout rule refuses a promote (the message states the rule and the numbers).
"""
from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from workbench.api.auth import AdminRoute
from workbench.api.errors import APIError
from workbench.errors import UnknownNameError, WorkbenchError
from workbench.routing.report import promote, promote_decision, route_report
from workbench.routing.routes import (BASE_ARM, DEFAULT_MARGIN, Arm, PromoteRefused, Route, RouteStore,
                              default_store)

router = APIRouter(route_class=AdminRoute)


class ArmBody(BaseModel):
    ref: str = Field(description="name@version, an adapter name, or 'base'")
    weight: float = Field(ge=0)


class RouteCreate(BaseModel):
    name: str
    arms: list[ArmBody]
    incumbent: str | None = None
    seed: int = 0
    margin: float = Field(DEFAULT_MARGIN, ge=0, le=1)


class RouteUpdate(BaseModel):
    arms: list[ArmBody] | None = None
    incumbent: str | None = None
    seed: int | None = None
    margin: float | None = Field(None, ge=0, le=1)


class PromoteBody(BaseModel):
    candidate: str | None = None


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


@router.get("/v1/routes/{name}")
async def get_route(name: str) -> dict:
    return route_json(await _call(_store().get, name))


@router.post("/v1/routes")
async def create_route(body: RouteCreate, request: Request) -> dict:
    arms = _arms(request.app.state.wb, body.arms)
    route = await _call(_store().create, body.name, arms, body.incumbent, body.seed, body.margin,
                        who=_who(request))
    return route_json(route)


@router.put("/v1/routes/{name}")
async def update_route(name: str, body: RouteUpdate, request: Request) -> dict:
    arms = _arms(request.app.state.wb, body.arms) if body.arms is not None else None
    route = await _call(_store().set, name, arms, body.incumbent, body.margin, body.seed,
                        who=_who(request))
    return route_json(route)


@router.delete("/v1/routes/{name}")
async def delete_route(name: str, request: Request) -> dict:
    await _call(_store().delete, name, who=_who(request))
    return {"object": "route.deleted", "name": name, "deleted": True}


def _report(name: str) -> dict:
    route = _store().get(name)
    rep = route_report(route)
    out = rep.as_json()
    out["promote"] = {c: promote_decision(rep, c, route.incumbent, route.margin).__dict__
                      for c in route.candidates}
    return out


@router.get("/v1/routes/{name}/report")
async def report_route(name: str) -> dict:
    return await _call(_report, name)


@router.post("/v1/routes/{name}/promote")
async def promote_route(name: str, request: Request, body: PromoteBody | None = None) -> dict:
    route = await _call(promote, _store(), name, body.candidate if body else None,
                        who=_who(request))
    return route_json(route)


@router.post("/v1/routes/{name}/rollback")
async def rollback_route(name: str, request: Request) -> dict:
    return route_json(await _call(_store().rollback, name, who=_who(request)))
