"""Running it as a service: managing projects and keys through the CLI while the server runs,
scoped keys in every API family, revocation.

The server runs in its own process on its own data directory; the real `sessionscope` command
reaches it through its management channel (``server.json`` and ``admin.token`` there).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EXE, serve_process
from tests.factories import player

pytestmark = pytest.mark.e2e

ENV = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONSCOPE_")}


def sh(data: Path, *args: str) -> Any:
    """The real command, with ``--json``; its answer."""
    done = subprocess.run(
        [*EXE, *args, "--data-dir", str(data), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert done.returncode == 0, (args, done.stderr)
    return json.loads(done.stdout)


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['api_key']}"}


def signed(key: dict[str, Any], method: str, target: str) -> dict[str, str]:
    """NAVER Cloud API Gateway signature v2 headers for a signing key."""
    ts = str(time.time_ns() // 1_000_000)
    message = f"{method} {target}\n{ts}\n{key['access_key']}".encode()
    digest = hmac.new(key["secret_key"].encode(), message, hashlib.sha256).digest()
    return {
        "x-ncp-apigw-timestamp": ts,
        "x-ncp-iam-access-key": key["access_key"],
        "x-ncp-apigw-signature-v2": base64.b64encode(digest).decode(),
    }


#: Routes that read nothing of a project, send events, or take no project key.
NOT_READS = {
    ("get", "/metrics"),
    ("get", "/readyz"),
    ("get", "/healthz"),
    ("post", "/api/v1/events"),
    ("post", "/api/v2/callbacks/events"),
}
PATH_VALUES = {
    "{kind}": "player",
    "{session}": "svc-1",
    "{uuid}": "svc-1",
    "{channelId}": "ls-svc",
}


def read_routes(http: httpx.Client) -> list[tuple[str, str]]:
    """Every route of the API families that take a project key and read, from OpenAPI."""
    out = []
    for path, methods in http.get("/openapi.json").json()["paths"].items():
        if path.startswith(("/api/v1/admin/", "/v6/")):  # the admin token; users
            continue
        for method in methods:
            if (method, path) in NOT_READS:
                continue
            for name, value in PATH_VALUES.items():
                path = path.replace(name, value)
            out.append((method, path))
    return out


def call(
    http: httpx.Client,
    method: str,
    path: str,
    project_id: int,
    api: dict[str, Any],
    ncp: dict[str, Any],
) -> httpx.Response:
    """A request of ``path`` with the family's credentials: the API key ``api``, or for Live
    Station a request signed with the signing key ``ncp``."""
    if path.startswith("/api/v2/"):
        headers = signed(ncp, method.upper(), path)
    elif path.startswith("/v1/"):
        headers = {"x-api-key": api["api_key"], "x-project-id": str(project_id)}
    elif path.startswith("/ekranapi/"):
        headers = {"ApiKey": api["api_key"]}
    else:
        headers = bearer(api)
    body = {} if method == "post" else None
    return http.request(method.upper(), path, headers=headers, json=body)


def forbidden(r: httpx.Response, path: str) -> None:
    """A 403 in the family's error shape."""
    assert r.status_code == 403, (path, r.status_code, r.text)
    body = r.json()
    if path.startswith(("/v1/", "/api/v2/")):  # NAVER Cloud
        assert body["error"]["errorCode"] == "210", (path, body)
    elif path.startswith("/ekranapi/"):  # RFC 7807
        assert r.headers["content-type"].startswith("application/problem+json")
        assert body["status"] == 403, (path, body)
    elif path.startswith("/v6/"):  # ThousandEyes
        assert set(body) == {"errorMessage"}, (path, body)
    else:
        assert body["error"]["code"] == "forbidden", (path, body)
    assert "scope" in json.dumps(body), (path, body)


@pytest.mark.timeout(600)
def test_manage_while_serving_scoped_keys_and_revocation(tmp_path: Path) -> None:
    data = tmp_path / "service"
    with serve_process(data) as base, httpx.Client(base_url=base, timeout=60) as http:
        project = sh(data, "projects", "create", "svc")
        pid = project["id"]
        ingest = sh(data, "keys", "create", "--project", "svc", "--scope", "ingest")
        read = sh(data, "keys", "create", "--project", "svc", "--scope", "read")
        ncp_ingest = sh(data, "keys", "create", "--project", "svc", "--ncp", "--scope", "ingest")
        ncp_read = sh(data, "keys", "create", "--project", "svc", "--ncp", "--scope", "read")
        assert ingest["id"] and ingest["id"] in ingest["api_key"]
        assert ncp_read["id"] == ncp_read["access_key"]
        listed = sh(data, "keys", "list", "--project", "svc")
        assert [set(k) for k in listed] == [
            {"id", "kind", "name", "scope", "created", "revoked"}
        ] * 4
        assert {k["id"]: (k["scope"], k["revoked"]) for k in listed} == {
            ingest["id"]: ("ingest", False),
            read["id"]: ("read", False),
            ncp_ingest["id"]: ("ingest", False),
            ncp_read["id"]: ("read", False),
        }
        assert [p["name"] for p in sh(data, "projects", "list")] == ["svc"]

        # The ingest key's events are accepted at once: header, the SDK's parameter, the Live
        # Station callback with the key, and a callback signed with the ingest signing key.
        r = http.post("/api/v1/events", json=[player(session="svc-1")], headers=bearer(ingest))
        assert r.json() == {"accepted": 1, "duplicates": 0}, r.text
        r = http.post(
            "/api/v1/events",
            params={"key": ingest["api_key"]},
            content=json.dumps([player(session="svc-2")]),
            headers={"Content-Type": "text/plain", "Origin": "https://video.example.com"},
        )
        assert r.json() == {"accepted": 1, "duplicates": 0}, r.text
        now = time.time_ns() // 1_000_000
        callback = [
            {"id": 1, "logLevel": "INFO", "channelId": "ls-svc", "event": "PUBLISH_START"}
            | {"timestamp": now}
        ]
        r = http.post(
            "/api/v2/callbacks/events", params={"apiKey": ingest["api_key"]}, json=callback
        )
        assert r.status_code == 200, r.text
        target = "/api/v2/callbacks/events"
        callback[0]["id"] = 2
        r = http.post(target, json=callback, headers=signed(ncp_ingest, "POST", target))
        assert r.status_code == 200, r.text

        # The read key reads them; the read signing key reads Live Station.
        r = http.get("/api/v1/sessions", params={"kind": "player"}, headers=bearer(read))
        assert {s["session"] for s in r.json()["sessions"]} == {"svc-1", "svc-2"}, r.text
        target = "/api/v2/channels/ls-svc/events"
        r = http.get(target, headers=signed(ncp_read, "GET", target))
        assert r.status_code == 200 and r.json()["total"] == 2, r.text

        # The ingest keys get a 403 on every read route of every API family.
        routes = read_routes(http)
        families = {p.split("/")[1] + "/" + p.split("/")[2] for _, p in routes}
        assert families == {"api/v1", "v1/sessionRecent", "v1/charts", "ekranapi/sessions"} | {
            "ekranapi/user",
            "api/v2",
        }, routes
        assert len(routes) >= 14, routes
        for method, path in routes:
            forbidden(call(http, method, path, pid, ingest, ncp_ingest), path)
            # ... and the read keys pass the same check.
            assert call(http, method, path, pid, read, ncp_read).status_code != 403, path
        # ThousandEyes takes users' tokens, not project keys: the ingest key gets its 403
        # in ThousandEyes' shape (Bearer or Basic), the read key is refused as no credential.
        te = "/v6/endpoint-data/user-sessions.json"
        forbidden(http.get(te, headers=bearer(ingest)), te)
        forbidden(http.get(te, auth=("ops@example.com", ingest["api_key"])), te)
        r = http.get(te, headers=bearer(read))
        assert r.status_code == 401, r.text
        # Dashboard sign-in: the ingest key is refused, the read key signs in.
        origin = {"Origin": base}
        r = http.post("/login", data={"api_key": ingest["api_key"]}, headers=origin)
        assert r.status_code == 403 and "scope" in r.text, r.text
        r = http.post("/login", data={"api_key": read["api_key"]}, headers=origin)
        assert r.status_code == 303, r.text

        # The read keys get a 403 on ingest, in each family's shape.
        r = http.post("/api/v1/events", json=[player(session="svc-3")], headers=bearer(read))
        forbidden(r, "/api/v1/events")
        r = http.post("/api/v1/events", params={"key": read["api_key"]}, content="[]")
        forbidden(r, "/api/v1/events")
        r = http.post(target := "/api/v2/callbacks/events", json=callback, headers=bearer(read))
        forbidden(r, target)
        r = http.post(target, json=callback, headers=signed(ncp_read, "POST", target))
        forbidden(r, target)

        # Revoked keys are refused at once by this server (401), whichever the family.
        revoked = sh(data, "keys", "revoke", "--project", "svc", ingest["id"])
        assert revoked["revoked"] is True and revoked["id"] == ingest["id"]
        r = http.post("/api/v1/events", json=[player(session="svc-4")], headers=bearer(ingest))
        assert r.status_code == 401, r.text
        r = http.post("/api/v1/events", params={"key": ingest["api_key"]}, content="[]")
        assert r.status_code == 401, r.text
        sh(data, "keys", "revoke", "--project", "svc", read["id"])
        r = http.get("/api/v1/sessions", params={"kind": "player"}, headers=bearer(read))
        assert r.status_code == 401, r.text
        r = http.get(
            "/v1/sessionRecent", headers={"x-api-key": read["api_key"], "x-project-id": str(pid)}
        )
        assert r.status_code == 401, r.text
        sh(data, "keys", "revoke", "--project", "svc", ncp_read["id"])
        target = "/api/v2/channels/ls-svc/events"
        assert http.get(target, headers=signed(ncp_read, "GET", target)).status_code == 401
        listed = sh(data, "keys", "list", "--project", "svc")
        assert {k["id"] for k in listed if k["revoked"]} == {
            ingest["id"],
            read["id"],
            ncp_read["id"],
        }

    # Stopped: the commands work on the store directly, with the same answers.
    assert sh(data, "keys", "list", "--project", "svc") == listed
