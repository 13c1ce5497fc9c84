"""``sessionscope forward ...``: collectors that read a local source and send its events."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from sessionscope.forward import activitywatch as aw

__all__ = ["app"]

app = typer.Typer(help="Forward events from local sources (ActivityWatch).", no_args_is_help=True)

_DEFAULT_STATE = Path.home() / ".sessionscope" / "activitywatch-state.json"


def _day_start(text: str) -> int | None:
    if text.lower() in ("off", "none", ""):
        return None
    m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text)
    if not m:
        raise typer.BadParameter("must be HH:MM (local time) or off", param_hint="--day-start")
    return int(m[1]) * 60 + int(m[2])


def _since(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("must be an ISO 8601 date or time", param_hint="--since") from None
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return int(t.timestamp() * 1000)


@app.command("activitywatch")
def activitywatch(
    url: Annotated[
        str, typer.Option("--url", help="The sessionscope server, e.g. http://host:8000")
    ],
    api_key: Annotated[
        str, typer.Option("--api-key", envvar="SESSIONSCOPE_API_KEY", help="A project API key.")
    ],
    aw_url: Annotated[str, typer.Option("--aw-url", help="aw-server")] = "http://localhost:5600",
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    interval: Annotated[float, typer.Option(min=1, help="Seconds between passes.")] = 60,
    state: Annotated[Path, typer.Option(help="State file (resume point).")] = _DEFAULT_STATE,
    since: Annotated[
        str | None, typer.Option(help="First pass starts here (ISO 8601) (default: 7 days ago).")
    ] = None,
    hostname: Annotated[
        str | None, typer.Option(help="Whose buckets (default: aw-server's host).")
    ] = None,
    user_id: Annotated[
        int | None, typer.Option(min=0, max=2_147_483_647, help="(default: from user name)")
    ] = None,
    user_name: Annotated[str | None, typer.Option(help="(default: the login name)")] = None,
    client_guid: Annotated[
        str | None, typer.Option(help="(default: aw-server's device_id)")
    ] = None,
    client_name: Annotated[str | None, typer.Option(help="(default: the host name)")] = None,
    heartbeat: Annotated[int, typer.Option(min=1, help="Seconds between activity points.")] = 60,
    new_session_after: Annotated[
        int, typer.Option(min=1, help="Minutes away that end a session.")
    ] = 60,
    day_start: Annotated[
        str, typer.Option(help="Local time a day ends at (cuts sessions), or off.")
    ] = "04:00",
) -> None:
    """Send an ActivityWatch server's afk and window data as desktop sessions."""
    cfg = aw.Config(
        aw_url=aw_url,
        url=url,
        api_key=api_key,
        state_path=state,
        hostname=hostname,
        user_id=user_id,
        user_name=user_name,
        client_guid=client_guid,
        client_name=client_name,
        heartbeat_s=heartbeat,
        new_session_after_s=new_session_after * 60,
        day_start_min=_day_start(day_start),
        since_ms=_since(since),
    )
    try:
        aw.run(cfg, once=once, interval_s=interval, echo=typer.echo)
    except aw.ForwardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
