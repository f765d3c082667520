"""`workbench routes ...`: A/B routes (weighted arms behind one model name) and guarded rollout."""
from __future__ import annotations

import json
import os
import time

import click

ARM_OPTION = click.option("--arm", "arms", multiple=True, metavar="REF=WEIGHT",
                          help="An arm and its weight, e.g. cs-support@v3=10 or base=5; repeat "
                               "for each arm (comma-separated also works).")


def _store(check: bool = True):
    from workbench.adapters.registry import Registry
    from workbench.routing.store import RouteStore

    return RouteStore(registry=Registry() if check else None)


def _who() -> str:
    from workbench.routing.routes import token_id

    return token_id(os.environ.get("WORKBENCH_ADMIN_TOKEN"))


def _arms(values: tuple[str, ...]):
    from workbench.routing.routes import parse_arms

    return parse_arms([part for v in values for part in v.split(",")])


def _describe(route) -> str:
    arms = ", ".join(f"{a.ref} {route.share(a.ref):.0%}" for a in route.arms)
    guard = route.guard or {}
    canary = (f", guard {'on' if guard.get('auto') else 'set, off'} ({guard.get('metric')}, "
              f"margin {float(guard.get('margin', 0)):.1%})" if guard else "")
    return (f"{route.name}: {arms} (incumbent {route.incumbent}, margin {route.margin:.1%}, "
            f"seed {route.seed}{canary})")


@click.group("routes")
def routes_group() -> None:
    """A/B routes: one model name whose traffic is split over weighted arms, sticky per user.

    Example: workbench routes create cs-support --arm cs-support@v2=90 --arm cs-support@v3=10
    """


@routes_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per route.")
def list_cmd(as_json: bool) -> None:
    """Every route with its arms, shares and incumbent.

    Example: workbench routes list --json
    """
    store = _store(check=False)
    routes = store.routes()
    if not routes and not as_json:
        click.echo(f"No routes in {store.db.describe()}. Create one with: workbench routes create NAME "
                   "--arm REF=90 --arm REF2=10")
    for name in sorted(routes):
        route = routes[name]
        if as_json:
            click.echo(json.dumps({"name": name, **route.to_yaml()}, ensure_ascii=False))
        else:
            click.echo(_describe(route))


GUARD_OPTION = click.option(
    "--guard", default=None, metavar="JSON",
    help='Automatic canary guard, e.g. \'{"auto": true, "metric": "resolution", "margin": 0.02, '
         '"alpha": 0.05, "min_feedback": 200, "steps": [10, 50, 100]}\' ({} takes it off).')


def _guard(text: str | None) -> dict | None:
    from workbench.errors import InputError
    from workbench.routing.guard import policy_from_json

    if text is None:
        return None
    try:
        return policy_from_json(text)
    except InputError as exc:
        raise click.BadParameter(exc.message, param_hint="--guard") from None


@routes_group.command("create")
@click.argument("name")
@ARM_OPTION
@click.option("--incumbent", default=None, help="The arm being guarded [default: the first arm].")
@click.option("--seed", default=0, show_default=True, help="Seed of the assignment hash.")
@click.option("--margin", default=0.02, show_default=True,
              help="Promote needs candidate lower bound >= incumbent rate minus this.")
@click.option("--unchecked", is_flag=True, help="Do not check arms against the local registry "
              "(arms served by a remote backend).")
@GUARD_OPTION
def create_cmd(name: str, arms: tuple[str, ...], incumbent: str | None, seed: int, margin: float,
               unchecked: bool, guard: str | None) -> None:
    """Create a route; arms are name@version refs, adapter names or 'base'.

    Example: workbench routes create cs-support --arm cs-support@v2=90 --arm cs-support@v3=10
    """
    route = _store(not unchecked).create(name, _arms(arms), incumbent, seed, margin, who=_who(),
                                         guard=_guard(guard))
    click.echo(f"Created {_describe(route)}")


@routes_group.command("set")
@click.argument("name")
@ARM_OPTION
@click.option("--incumbent", default=None, help="Make this arm the incumbent.")
@click.option("--seed", type=int, default=None, help="New hash seed (reshuffles every user).")
@click.option("--margin", type=float, default=None, help="New promote margin (a proportion).")
@click.option("--unchecked", is_flag=True, help="Do not check arms against the local registry.")
@GUARD_OPTION
def set_cmd(name: str, arms: tuple[str, ...], incumbent: str | None, seed: int | None,
            margin: float | None, unchecked: bool, guard: str | None) -> None:
    """Change a route's weights (give every arm) or settings; applies to running servers at once.

    Example: workbench routes set cs-support --arm cs-support@v2=80 --arm cs-support@v3=20
    """
    route = _store(not unchecked).set(name, _arms(arms) if arms else None, incumbent, margin, seed,
                                      who=_who(), guard=_guard(guard))
    click.echo(f"Updated {_describe(route)}")


@routes_group.command("report")
@click.argument("name")
@click.option("--since-hours", type=float, default=None, help="Only turns of the last N hours.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def report_cmd(name: str, since_hours: float | None, as_json: bool) -> None:
    """Compare a route's arms on stored chat turns: resolution, rating, latency, errors (95% CIs).

    Example: workbench routes report cs-support --json
    """
    from workbench.routing.report import (REPORT_HEADERS, manual_policy, promote_decision, report_table,
                                          route_report)

    route = _store(check=False).get(name)
    since = time.time() - since_hours * 3600 if since_hours else None
    rep = route_report(route, since=since)
    decisions = {c: promote_decision(rep, c, route.incumbent, manual_policy(route)) for c in route.candidates}
    if as_json:
        out = rep.as_json()
        out["promote"] = {c: {"allowed": d.allowed, "message": d.message} for c, d in decisions.items()}
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    rows = report_table(rep)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(REPORT_HEADERS)]
    click.secho("  ".join(h.ljust(w) for h, w in zip(REPORT_HEADERS, widths)), bold=True)
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    for d in decisions.values():
        click.echo(d.message)


@routes_group.command("promote")
@click.argument("name")
@click.option("--candidate", default=None, help="Arm to promote [default: the only candidate].")
def promote_cmd(name: str, candidate: str | None) -> None:
    """Send 100% to the candidate, only if its resolution rate holds up (the rule is printed).

    Example: workbench routes promote cs-support --candidate cs-support@v3
    """
    from workbench.routing.report import promote

    route = promote(_store(check=False), name, candidate, who=_who())
    click.echo(f"Promoted: {_describe(route)}")


@routes_group.command("rollback")
@click.argument("name")
def rollback_cmd(name: str) -> None:
    """Send all traffic to the incumbent in one change (right after a promote: undo it).

    Example: workbench routes rollback cs-support
    """
    route = _store(check=False).rollback(name, who=_who())
    click.echo(f"Rolled back: {_describe(route)}")


@routes_group.command("audit")
@click.argument("name", required=False)
def audit_cmd(name: str | None) -> None:
    """Every weight change (time, who, before -> after), oldest first.

    Example: workbench routes audit cs-support
    """
    for e in _store(check=False).audit(name):
        click.echo(f"{e['time']}  {e['route']:<16} {e['action']:<9} {e['who']:<20} "
                   f"{e['before']} -> {e['after']}")


COMMANDS: list[click.Command] = [routes_group]
