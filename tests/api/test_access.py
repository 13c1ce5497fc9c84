"""The management API (/api/v1/admin/) and revocation: keys, users, sign-in links; what servers
sharing a store see of it."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from sessionscope.config import Settings
from sessionscope.dashboard.auth import sign_in_link
from sessionscope.store import accounts as accounts_module
from sessionscope.store.clickhouse import ClickHouseStore
from tests.conftest import Tenant
from tests.factories import player

ADMIN = "/api/v1/admin"


@pytest.fixture
def admin(settings: Settings, base_url: str) -> dict[str, str]:
    token_file = Path(settings.data_dir) / "admin.token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    return {"Authorization": f"Bearer {token_file.read_text().strip()}"}


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    return r.json()


def test_admin_api_needs_the_admin_token(http: httpx.Client, admin: dict[str, str]) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
        r = http.get(f"{ADMIN}/projects", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text
    assert isinstance(ok(http.get(f"{ADMIN}/projects", headers=admin)), list)
    spec = http.get("/openapi.json").json()
    assert {"/api/v1/admin/keys", "/api/v1/admin/keys/revoke", "/api/v1/admin/users"} <= set(
        spec["paths"]
    )
    assert spec["paths"]["/api/v1/admin/keys"]["post"]["security"] == [{"admin token": []}]


def test_admin_api_manages_projects_and_keys(
    http: httpx.Client, admin: dict[str, str], tenant: Tenant
) -> None:
    name = f"admin-{tenant.project.id}"
    made = ok(http.post(f"{ADMIN}/projects", json={"name": name}, headers=admin))
    assert made["name"] == name and made["organization"] == name
    again = http.post(f"{ADMIN}/projects", json={"name": name}, headers=admin)
    assert again.status_code == 409 and "already exists" in again.text
    body = {"name": name, "idle_timeout_s": 600, "organization": "Acme"}
    changed = ok(http.post(f"{ADMIN}/projects/set", json=body, headers=admin))
    assert (changed["idle_timeout_s"], changed["organization"]) == (600, "Acme")
    bad = http.post(
        f"{ADMIN}/projects/set", json={"name": name, "idle_timeout_s": 5}, headers=admin
    )
    assert bad.status_code == 400 and "idle_timeout_s" in bad.text
    assert name in {p["name"] for p in ok(http.get(f"{ADMIN}/projects", headers=admin))}

    key = ok(http.post(f"{ADMIN}/keys", json={"project": name, "scope": "read"}, headers=admin))
    assert key["scope"] == "read" and key["api_key"].startswith(f"ssk_{key['id']}_")
    wrong = http.post(f"{ADMIN}/keys", json={"project": name, "scope": "all"}, headers=admin)
    assert wrong.status_code == 400 and "scope" in wrong.text
    missing = http.post(f"{ADMIN}/keys", json={"project": name + "-none"}, headers=admin)
    assert missing.status_code == 404 and "no project named" in missing.text
    listed = ok(http.get(f"{ADMIN}/keys", params={"project": name}, headers=admin))
    assert listed == [
        {
            "id": key["id"],
            "kind": "api",
            "name": "",
            "scope": "read",
            "created": listed[0]["created"],
            "revoked": False,
        }
    ]
    auth = {"Authorization": f"Bearer {key['api_key']}"}
    assert http.get("/api/v1/project", headers=auth).json()["name"] == name
    # Another project's key id is not this project's to revoke.
    other = tenant.api_key.split("_")[1]
    r = http.post(f"{ADMIN}/keys/revoke", json={"project": name, "id": other}, headers=admin)
    assert r.status_code == 404
    revoked = ok(
        http.post(f"{ADMIN}/keys/revoke", json={"project": name, "id": key["id"]}, headers=admin)
    )
    assert revoked["revoked"] is True
    assert http.get("/api/v1/project", headers=auth).status_code == 401
    assert http.get("/api/v1/project", headers=tenant.auth).status_code == 200


def test_keys_made_before_scopes_are_full(
    http: httpx.Client, store: ClickHouseStore, tenant: Tenant
) -> None:
    # `tenant`'s key is made without a scope, as every key was before scopes.
    assert [k.scope for k in store.list_keys(tenant.project.id)] == ["full"]
    r = http.post("/api/v1/events", json=[player(session="full-1")], headers=tenant.auth)
    assert r.json()["accepted"] == 1
    r = http.get("/api/v1/sessions", params={"kind": "player"}, headers=tenant.auth)
    assert [s["session"] for s in r.json()["sessions"]] == ["full-1"]


def test_users_revoke(
    http: httpx.Client, admin: dict[str, str], store: ClickHouseStore, tenant: Tenant
) -> None:
    email = f"revoked-{tenant.project.id}@example.com"
    body = {"email": email, "projects": [tenant.project.name]}
    token = ok(http.post(f"{ADMIN}/users", json=body, headers=admin))["token"]
    te = "/v6/endpoint-data/user-sessions.json"
    assert http.get(te, auth=(email, token)).status_code == 200
    dash = httpx.Client(base_url=str(http.base_url), headers={"Origin": str(http.base_url)})
    with dash:
        r = dash.post("/login", data={"email": email, "token": token})
        assert r.status_code == 303
        assert dash.get("/").status_code == 200
        users = ok(http.get(f"{ADMIN}/users", headers=admin))
        assert {"email": email, "revoked": False} | {"project_ids": [tenant.project.id]} in [
            {k: u[k] for k in ("email", "revoked", "project_ids")} for u in users
        ]
        revoked = ok(http.post(f"{ADMIN}/users/revoke", json={"email": email}, headers=admin))
        assert revoked["revoked"] is True
        assert http.get(te, auth=(email, token)).status_code == 401
        assert http.get(te, headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert dash.get("/").status_code == 303  # the sign-in made with it is over
        assert dash.post("/login", data={"email": email, "token": token}).status_code == 401
    missing = http.post(f"{ADMIN}/users/revoke", json={"email": "x" + email}, headers=admin)
    assert missing.status_code == 404
    # Created again, the user is live with a new token.
    again = ok(http.post(f"{ADMIN}/users", json=body, headers=admin))["token"]
    assert http.get(te, auth=(email, again)).status_code == 200


def test_sign_in_links_revoked(
    http: httpx.Client, admin: dict[str, str], settings: Settings, tenant: Tenant
) -> None:
    link = sign_in_link(settings, tenant.project.id)
    with httpx.Client() as browser:
        assert browser.get(link).status_code == 303
        assert browser.get(str(http.base_url) + "/").status_code == 200
        body = {"name": tenant.project.name}
        out = ok(http.post(f"{ADMIN}/projects/revoke-links", json=body, headers=admin))
        assert out["signin_generation"] == 1
        assert browser.get(str(http.base_url) + "/").status_code == 303  # signed out
        browser.cookies.clear()
        refused = browser.get(link)
        assert refused.status_code == 400 and "not valid" in refused.text
        # A link of the new generation works.
        assert browser.get(sign_in_link(settings, tenant.project.id, 1)).status_code == 303
        assert browser.get(str(http.base_url) + "/").status_code == 200


def test_a_server_sharing_the_store_refuses_revoked_keys_within_5_s(
    store: ClickHouseStore, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another server on the same (shared) store: it cannot know of revocations but by asking.
    other = ClickHouseStore(store._connect, store.profile, store._box, exclusive=False)
    assert other._key_s < 5 and other._cache_s < 5
    grant = other.key_grant(tenant.api_key)
    assert grant is not None and grant.scope == "full"
    assert other.remembered_api_key(tenant.api_key) is not None
    store.revoke_key(tenant.project.id, tenant.api_key.split("_")[1])
    assert store.key_grant(tenant.api_key) is None  # at once where it was revoked
    # 5 s later on the other server (its clock moved on; nothing else changed).
    later = time.monotonic() + 5.0
    clock = SimpleNamespace(monotonic=lambda: later, time_ns=time.time_ns)
    monkeypatch.setattr(accounts_module, "_time", clock)
    assert other.remembered_api_key(tenant.api_key) is None
    assert other.key_grant(tenant.api_key) is None


def test_thousandeyes_refuses_project_keys_by_scope(
    http: httpx.Client, store: ClickHouseStore, tenant: Tenant
) -> None:
    """A project key given as a ThousandEyes token (users are its credentials): an ingest key
    gets ThousandEyes' 403 (JSON or XML, Bearer or Basic), a read key a 401 naming what to use,
    a revoked ingest key a plain 401."""
    pid = tenant.project.id
    ingest = store.create_api_key(pid, "te-ingest", "ingest")
    read = store.create_api_key(pid, "te-read", "read")
    url = "/v6/endpoint-data/user-sessions"
    for auth in ({"headers": {"Authorization": f"Bearer {ingest}"}}, {"auth": ("a@b.c", ingest)}):
        r = http.get(url + ".json", **auth)  # type: ignore[arg-type]
        assert r.status_code == 403, r.text
        assert list(r.json()) == ["errorMessage"] and "scope 'ingest'" in r.text, r.text
        assert "sessionscope users create" in r.text
    r = http.get(url + ".xml", headers={"Authorization": f"Bearer {ingest}"})
    assert r.status_code == 403 and "<errorMessage>" in r.text and "scope" in r.text, r.text
    r = http.get(url + ".json", headers={"Authorization": f"Bearer {read}"}, params={"aid": pid})
    assert r.status_code == 401 and "not a ThousandEyes credential" in r.text, r.text
    assert store.revoke_key(pid, ingest.split("_")[1]) is not None
    r = http.get(url + ".json", headers={"Authorization": f"Bearer {ingest}"})
    assert r.status_code == 401 and list(r.json()) == ["errorMessage"], r.text
