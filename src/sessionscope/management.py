"""Managing projects, keys and users: the same operations on the store directly or through a
running server.

The CLI's ``projects``, ``keys`` and ``users`` commands and the HTTP management API
(``/api/v1/admin/``, see ``api/admin.py``) both call a :class:`Management`: a
:class:`StoreManagement` works on a store, a :class:`RemoteManagement` asks a server's management
API (for the CLI while a server holds the embedded store). Every operation answers plain JSON
values, the same either way, so every command prints the same whichever did the work.

The admin credential of a server is a random token it keeps in ``<data dir>/admin.token``
(mode 0600); where it listens is in ``<data dir>/server.json`` while it serves.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from sessionscope import registry
from sessionscope.domain.accounts import SCOPES, Project
from sessionscope.security import split_api_key
from sessionscope.store.clickhouse import ClickHouseStore
from sessionscope.store.engine import StoreError

__all__ = [
    "ADMIN_TOKEN_FILE",
    "APDEX_THRESHOLD_RANGE_MS",
    "IDLE_TIMEOUT_RANGE_S",
    "SERVER_FILE",
    "Management",
    "ManagementError",
    "RemoteManagement",
    "StoreManagement",
    "admin_token",
    "forget_server",
    "record_server",
    "recorded_server",
]

#: The idle timeouts a project may have, in seconds: a minute to a day.
IDLE_TIMEOUT_RANGE_S = (60, 86_400)
#: The Apdex thresholds T a project may have, in milliseconds: up to a minute.
APDEX_THRESHOLD_RANGE_MS = (1, 60_000)
#: In the data directory: the management API's credential, and where the server listens.
ADMIN_TOKEN_FILE = "admin.token"
SERVER_FILE = "server.json"


class ManagementError(Exception):
    """An operation refused: ``status`` 400 (invalid), 404 (no such thing) or 409 (exists)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Management(Protocol):
    """What can be managed; each answer is what ``--json`` prints."""

    def create_project(self, name: str, organization: str) -> dict[str, Any]: ...
    def list_projects(self) -> list[dict[str, Any]]: ...
    def set_project(
        self,
        name: str,
        idle_timeout_s: int | None,
        apdex_threshold_ms: int | None,
        organization: str | None,
    ) -> dict[str, Any]: ...
    def revoke_links(self, name: str) -> dict[str, Any]: ...
    def create_key(self, project: str, kind: str, name: str, scope: str) -> dict[str, Any]: ...
    def list_keys(self, project: str) -> list[dict[str, Any]]: ...
    def revoke_key(self, project: str, key_id: str) -> dict[str, Any]: ...
    def create_user(self, email: str, projects: Sequence[str]) -> dict[str, Any]: ...
    def list_users(self) -> list[dict[str, Any]]: ...
    def revoke_user(self, email: str) -> dict[str, Any]: ...


def _check_range(value: int | None, bounds: tuple[int, int], what: str) -> None:
    if value is not None and not bounds[0] <= value <= bounds[1]:
        raise ManagementError(f"{what} must be from {bounds[0]} to {bounds[1]}, not {value}")


class StoreManagement:
    """The operations, on a store."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store

    def _project(self, name: str) -> Project:
        project = self.store.get_project_by_name(name)
        if project is None:
            raise ManagementError(
                f"no project named {name!r} (create it with: sessionscope projects create)", 404
            )
        return project

    def create_project(self, name: str, organization: str) -> dict[str, Any]:
        org = organization.strip()
        if len(org) > 100:
            raise ManagementError("organization must be at most 100 characters")
        try:
            return self.store.create_project(name, organization=org).as_dict()
        except StoreError as exc:
            raise ManagementError(str(exc), 409 if "exists" in str(exc) else 400) from None

    def list_projects(self) -> list[dict[str, Any]]:
        return [p.as_dict() for p in self.store.list_projects()]

    def set_project(
        self,
        name: str,
        idle_timeout_s: int | None,
        apdex_threshold_ms: int | None,
        organization: str | None,
    ) -> dict[str, Any]:
        _check_range(idle_timeout_s, IDLE_TIMEOUT_RANGE_S, "idle_timeout_s")
        _check_range(apdex_threshold_ms, APDEX_THRESHOLD_RANGE_MS, "apdex_threshold_ms")
        org = organization.strip() if organization is not None else None
        if org is not None and len(org) > 100:
            raise ManagementError("organization must be at most 100 characters")
        project = self.store.update_project(
            self._project(name),
            idle_timeout_s=idle_timeout_s,
            apdex_threshold_ms=apdex_threshold_ms,
            organization=org,
        )
        return project.as_dict()

    def revoke_links(self, name: str) -> dict[str, Any]:
        project = self.store.revoke_signin_links(self._project(name))
        return {
            "project": project.name,
            "project_id": project.id,
            "signin_generation": project.signin_generation,
        }

    def create_key(self, project: str, kind: str, name: str, scope: str) -> dict[str, Any]:
        """A key of ``kind``: ``api`` (a bearer API key) or a registered signing-key kind."""
        if scope not in SCOPES:
            raise ManagementError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        if kind != "api" and kind not in {k.name for k in registry.key_kinds()}:
            raise ManagementError(f"no key kind {kind!r}")
        p = self._project(project)
        out: dict[str, Any] = {"project": p.name, "project_id": p.id}
        if kind != "api":
            access, secret = self.store.create_signing_key(p.id, name, scope, kind)
            out.update(id=access, scope=scope, access_key=access, secret_key=secret)
        else:
            key = self.store.create_api_key(p.id, name, scope)
            parts = split_api_key(key)
            out.update(id=parts[0] if parts else "", scope=scope, api_key=key)
        return out

    def list_keys(self, project: str) -> list[dict[str, Any]]:
        keys = self.store.list_keys(self._project(project).id, revoked=True)
        return [k.as_dict() for k in keys]

    def revoke_key(self, project: str, key_id: str) -> dict[str, Any]:
        p = self._project(project)
        key = self.store.revoke_key(p.id, key_id.strip())
        if key is None:
            raise ManagementError(f"project {p.name!r} has no key {key_id!r}", 404)
        return key.as_dict()

    def create_user(self, email: str, projects: Sequence[str]) -> dict[str, Any]:
        found = [self._project(name) for name in projects]
        try:
            token = self.store.create_user(email, [p.id for p in found])
        except StoreError as exc:
            raise ManagementError(str(exc)) from None
        return {
            "email": email.strip().lower(),
            "token": token,
            "project_ids": [p.id for p in found],
        }

    def list_users(self) -> list[dict[str, Any]]:
        return [u.as_dict() for u in self.store.list_users()]

    def revoke_user(self, email: str) -> dict[str, Any]:
        user = self.store.revoke_user(email)
        if user is None:
            raise ManagementError(f"no user {email.strip().lower()!r}", 404)
        return user.as_dict()


class RemoteManagement:
    """The operations, asked of a running server's management API with its admin token."""

    #: How long to keep trying to reach a server that is starting (replaying its journal).
    CONNECT_WAIT_S = 30.0

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any
    ) -> Any:
        import httpx

        deadline = time.monotonic() + self.CONNECT_WAIT_S
        while True:
            try:
                r = httpx.request(
                    method,
                    f"{self.url}/api/v1/admin/{path}",
                    json=body,
                    params={k: v for k, v in params.items() if v is not None},
                    headers={"Authorization": f"Bearer {self.token}"},
                    timeout=60,
                )
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise ManagementError(
                        f"cannot reach the sessionscope server at {self.url} that holds the "
                        "data directory",
                        503,
                    ) from None
                time.sleep(0.5)
            except httpx.HTTPError as exc:
                raise ManagementError(
                    f"the server at {self.url} did not answer: {exc}", 503
                ) from None
        if r.status_code >= 400:
            try:
                message = str(r.json()["error"]["message"])
            except (ValueError, KeyError, TypeError):
                message = f"the server at {self.url} answered {r.status_code}"
            if r.status_code == 401:
                message = f"the server at {self.url} refused the admin token: {message}"
            raise ManagementError(message, r.status_code)
        return r.json()

    def create_project(self, name: str, organization: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", "projects", {"name": name, "organization": organization}
        )
        return result

    def list_projects(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "projects")
        return result

    def set_project(
        self,
        name: str,
        idle_timeout_s: int | None,
        apdex_threshold_ms: int | None,
        organization: str | None,
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "idle_timeout_s": idle_timeout_s,
            "apdex_threshold_ms": apdex_threshold_ms,
            "organization": organization,
        }
        result: dict[str, Any] = self._call("POST", "projects/set", body)
        return result

    def revoke_links(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "projects/revoke-links", {"name": name})
        return result

    def create_key(self, project: str, kind: str, name: str, scope: str) -> dict[str, Any]:
        # The management API asks for a signing key by its kind's option (``"<option>": true``).
        options = {k.option: True for k in registry.key_kinds() if k.name == kind}
        body = {"project": project, "name": name, "scope": scope, **options}
        result: dict[str, Any] = self._call("POST", "keys", body)
        return result

    def list_keys(self, project: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "keys", project=project)
        return result

    def revoke_key(self, project: str, key_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", "keys/revoke", {"project": project, "id": key_id}
        )
        return result

    def create_user(self, email: str, projects: Sequence[str]) -> dict[str, Any]:
        body = {"email": email, "projects": list(projects)}
        result: dict[str, Any] = self._call("POST", "users", body)
        return result

    def list_users(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "users")
        return result

    def revoke_user(self, email: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "users/revoke", {"email": email})
        return result


# ---------------------------------------------------------------------------- local channel


def admin_token(data_dir: str | Path) -> str:
    """The management API's admin token of a data directory: made once (random), kept in
    ``<data dir>/admin.token`` readable by its owner only. Delete the file and restart the
    server to change it."""
    path = Path(data_dir) / ADMIN_TOKEN_FILE
    with contextlib.suppress(FileNotFoundError):
        token = path.read_text().strip()
        if token:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    os.chmod(path, 0o600)
    return token


def _local_url(host: str, port: int) -> str:
    """How a command on this machine reaches a server listening on ``host``."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def record_server(data_dir: str | Path, host: str, port: int) -> None:
    """Say where this process serves the data directory (``server.json``)."""
    path = Path(data_dir) / SERVER_FILE
    path.write_text(json.dumps({"url": _local_url(host, port), "pid": os.getpid()}) + "\n")


def forget_server(data_dir: str | Path) -> None:
    """Remove ``server.json`` if this process wrote it."""
    path = Path(data_dir) / SERVER_FILE
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if json.loads(path.read_text())["pid"] == os.getpid():
            path.unlink()


def recorded_server(data_dir: str | Path) -> tuple[str, int] | None:
    """``(url, pid)`` of the server that recorded itself in the data directory, or None."""
    try:
        data = json.loads((Path(data_dir) / SERVER_FILE).read_text())
        return str(data["url"]), int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
