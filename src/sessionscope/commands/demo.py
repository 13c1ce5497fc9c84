"""The demo: simulated data in a 'demo' project, credentials for every API, a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from sessionscope.commands.common import (
    DataDir,
    LogFormat,
    console,
    opened_store,
    run_server,
    settings_for,
    stopped_by_signals,
)
from sessionscope.commands.data import run_simulation
from sessionscope.config import Settings
from sessionscope.registry import demos

__all__ = ["demo", "print_demo_help"]


# ---------------------------------------------------------------------------- demo


def demo(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Interface [default 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default 8000]")] = None,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve when the data is loaded.")
    ] = True,
    log_format: LogFormat = None,
) -> None:
    """Load simulated data into a 'demo' project (once), print credentials, and serve."""
    settings = settings_for(data_dir, host=host, port=port, log_format=log_format)
    creds_file = Path(settings.data_dir) / "demo-credentials.json"
    with opened_store(settings) as store:
        project = store.get_project_by_name("demo") or store.create_project("demo")
        creds: dict[str, Any] = {}
        if creds_file.exists():
            creds = json.loads(creds_file.read_text())
        if creds.get("project_id") != project.id or not store.verify_api_key(
            creds.get("api_key", "")
        ):
            creds = {"project": "demo", "project_id": project.id}
            creds["api_key"] = store.create_api_key(project.id, "demo")
        for vendor in demos():  # the credentials each vendor-compatible API needs
            vendor.credentials(store, project, creds)
        creds_file.write_text(json.dumps(creds, indent=2))
        creds_file.chmod(0o600)
        loaded = store.count_events(project.id)
    if loaded:
        console.print(f"demo data already loaded ({loaded} events); not loading again")
    else:
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        result = run_simulation(
            settings,
            project="demo",
            end=end,
            days=7,
            seed=42,
            sizes={"players": 6000, "channels": 4, "desktop_users": 25, "endpoint_agents": 15},
            url=None,
            api_key=None,
        )
        console.print(f"loaded {result['accepted']} simulated events into project 'demo'")
    print_demo_help(settings, creds, project.signin_generation)
    if serve_after:
        with stopped_by_signals(), opened_store(settings) as store:
            run_server(settings, store)


def print_demo_help(settings: Settings, creds: dict[str, Any], generation: int = 0) -> None:
    from sessionscope.dashboard.auth import sign_in_link

    base = settings.base_url
    key = creds["api_key"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = f'{{"kind":"channel","time":"{now}","type":"PUBLISH_START","channel":"ls-demo"}}'
    auth = f"-H 'Authorization: Bearer {key}'"
    lines = [
        "",
        f"[bold]sessionscope demo[/bold]  {base}",
        f"  project:  demo (id {creds['project_id']})",
        f"  API key:  {key}",
        f"  (saved in {Path(settings.data_dir) / 'demo-credentials.json'})",
        "",
        "Open the dashboard (this sign-in link works for 7 days; or sign in with the API key):",
        f"  {sign_in_link(settings, creds['project_id'], generation)}",
        "",
        "Try the native API:",
        f"  curl -s {auth} '{base}/api/v1/sessions?kind=player&limit=5'",
        f"  curl -s {auth} '{base}/api/v1/sessions?kind=desktop&limit=5'",
        f"  curl -s {auth} '{base}/api/v1/timeseries?kind=player&metric=viewers'",
        f"  curl -s {auth} -H 'Content-Type: application/json' -d '{event}' '{base}/api/v1/events'",
        f"OpenAPI docs: {base}/docs",
    ]
    for vendor in demos():  # each vendor-compatible API: its credentials and examples
        lines += vendor.help(base, creds)
    console.print("\n".join(lines), highlight=False, soft_wrap=True, markup=True)
