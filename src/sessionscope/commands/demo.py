"""The demo: simulated data in a 'demo' project, credentials for every API, a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from sessionscope.commands.common import (
    DataDir,
    console,
    opened_store,
    settings_for,
)
from sessionscope.commands.data import run_simulation
from sessionscope.config import Settings

__all__ = ["demo", "print_demo_help"]


# ---------------------------------------------------------------------------- demo


def demo(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Interface [default 127.0.0.1]")] = None,
    port: Annotated[int | None, typer.Option(help="Port [default 8000]")] = None,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve when the data is loaded.")
    ] = True,
) -> None:
    """Load simulated data into a 'demo' project (once), print credentials, and serve."""
    settings = settings_for(data_dir, host=host, port=port)
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
        # Vendor-compatible APIs add the credentials they need to `creds` here.
        signing = store.signing_secret(str(creds.get("ncp_access_key", "")))
        if signing is None or signing[0] != project.id:  # NAVER Cloud signature v2 pair
            creds["ncp_access_key"], creds["ncp_secret_key"] = store.create_signing_key(
                project.id, "demo"
            )
        te_user = store.verify_user(str(creds.get("te_email", "")), str(creds.get("te_token", "")))
        if te_user is None or project.id not in te_user.project_ids:  # ThousandEyes v6 user
            creds["te_email"] = "demo@example.com"
            creds["te_token"] = store.create_user(creds["te_email"], [project.id])
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
    print_demo_help(settings, creds)
    if serve_after:
        import uvicorn

        from sessionscope.app import create_app

        with opened_store(settings) as store:
            uvicorn.run(
                create_app(settings, store=store),
                host=settings.host,
                port=settings.port,
                access_log=settings.access_log,
            )


def print_demo_help(settings: Settings, creds: dict[str, Any]) -> None:
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
        f"  {sign_in_link(settings, creds['project_id'])}",
        "",
        "Try the native API:",
        f"  curl -s {auth} '{base}/api/v1/sessions?kind=player&limit=5'",
        f"  curl -s {auth} '{base}/api/v1/sessions?kind=desktop&limit=5'",
        f"  curl -s {auth} '{base}/api/v1/timeseries?kind=player&metric=viewers'",
        f"  curl -s {auth} -H 'Content-Type: application/json' -d '{event}' '{base}/api/v1/events'",
        f"OpenAPI docs: {base}/docs",
    ]
    # Vendor-compatible APIs add their credentials (made in `demo`) and examples here.
    lines += _livestation_help(base, creds)
    lines += _thousandeyes_help(base, creds)
    vpe = f"-H 'x-api-key: {key}' -H 'x-project-id: {creds['project_id']}'"
    lines += [
        "NAVER Cloud Video Player Enhancement (Media Analytics), docs/compat/ncp-vpe.md:",
        f"  curl -s {vpe} '{base}/v1/sessionRecent?device=PC,Mobile&videoType=VOD,LIVE&limit=5'",
        f"  curl -s {vpe} '{base}/v1/charts/playCnt'",
        f"  curl -s {vpe} '{base}/v1/charts/currentViewers'",
    ]
    ekran = f"-H 'ApiKey: {key}'"
    day = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    lines += [
        "Ekran System (desktop sessions), docs/compat/ekran.md:",
        f"  curl -s {ekran} -H 'Content-Type: application/json' "
        f'-d \'{{"start":"{day}","sessionCount":5}}\' \'{base}/ekranapi/sessions\'',
        f"  curl -s {ekran} '{base}/ekranapi/sessions?start={day}'",
        f"  curl -s {ekran} '{base}/ekranapi/user/getproductivity?start={day}'",
    ]
    console.print("\n".join(lines), highlight=False, soft_wrap=True, markup=True)


def _thousandeyes_help(base: str, creds: dict[str, Any]) -> list[str]:
    """Demo lines for the ThousandEyes v6 API: the demo user and a few curls."""
    email, token = creds.get("te_email"), creds.get("te_token")
    if not email or not token:
        return []
    auth = f"-u '{email}:{token}'"
    url = f"{base}/v6/endpoint-data/user-sessions"
    body = '{"searchFilters":[{"key":"domain","values":["thousandeyes.com"]}]}'
    return [
        "ThousandEyes v6 endpoint user sessions, docs/compat/thousandeyes.md:",
        f"  user: {email}  token: {token}  (account group aid={creds['project_id']})",
        f"  curl -s {auth} '{url}.json'",
        f"  curl -s {auth} '{url}.json?window=1d'",
        f"  curl -s {auth} '{url}.xml?window=2h&aid={creds['project_id']}'",
        escape(
            f"  curl -s {auth} -H 'Content-Type: application/json' -d '{body}' "
            f"'{url}.json?window=1w'"
        ),
    ]


def _livestation_help(base: str, creds: dict[str, Any]) -> list[str]:
    """Demo lines for the Live Station API: its keys and a curl signed with openssl."""
    ak, sk = creds.get("ncp_access_key"), creds.get("ncp_secret_key")
    if not ak or not sk:
        return []
    sign = (
        'SIG=$(printf \'GET %s\\n%s\\n%s\' "$P" "$TS" "$AK" '
        '| openssl dgst -sha256 -hmac "$SK" -binary | base64)'
    )
    headers = (
        '-H "x-ncp-apigw-timestamp: $TS" -H "x-ncp-iam-access-key: $AK" '
        '-H "x-ncp-apigw-signature-v2: $SIG"'
    )
    return [
        "NAVER Cloud Live Station (signature v2), docs/compat/ncp-livestation.md:",
        f"  access key: {ak}",
        f"  secret key: {sk}",
        f"  AK='{ak}' SK='{sk}' P='/api/v2/events?pageSize=5'",
        f"  TS=$(date +%s)000; {sign}",
        f'  curl -s {headers} "{base}$P"',
        f"  Live Station callback URL: {base}/api/v2/callbacks/events?apiKey={creds['api_key']}",
    ]
