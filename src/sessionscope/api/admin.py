"""The management API, ``/api/v1/admin/``: projects, keys and users while the server runs.

Every route takes ``Authorization: Bearer <admin token>``, the token the server keeps in
``<data dir>/admin.token`` (mode 0600). The routes mirror the CLI's commands one to one
(``sessionscope projects|keys|users ...``) and answer what their ``--json`` prints: the CLI
calls them when a server holds the embedded store. Errors have the native shape.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from sessionscope import registry
from sessionscope.api.context import AppContext, get_ctx
from sessionscope.api.errors import ApiError
from sessionscope.management import ManagementError, StoreManagement

__all__ = ["install"]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="admin token",
    description="The server's admin token, in `<data dir>/admin.token`.",
)


def _admin(
    request: Request,
    ctx: AppContext = Depends(get_ctx),
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> StoreManagement:
    """Dependency: the operations, for a request bearing the admin token (a 401 otherwise)."""
    given = credentials.credentials.strip() if credentials is not None else ""
    expected = ctx.admin_token
    if not given or not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "Authorization must be 'Bearer <admin token>' (the server's data directory has it "
            "in admin.token)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # Accepted: it keeps working from an address blocked for guessing (api.attempts).
    request.state.credential_accepted = True
    return StoreManagement(ctx.store)


router = APIRouter(prefix="/api/v1/admin", tags=["management"])


def _run(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except ManagementError as exc:
        code = {404: "not_found", 409: "conflict"}.get(exc.status, "bad_request")
        raise ApiError(exc.status, code, exc.message) from None


class NewProject(BaseModel):
    name: str = Field(description="A unique name, 1 to 100 characters.")
    organization: str = Field("", description="Its organisation ('' : its own).")


class ProjectSettings(BaseModel):
    name: str = Field(description="The project.")
    idle_timeout_s: int | None = Field(None, description="Desktop idle timeout, 60 to 86400 s.")
    apdex_threshold_ms: int | None = Field(None, description="Apdex threshold T, 1 to 60000 ms.")
    organization: str | None = Field(None, description="Its organisation ('' for its own).")


class ProjectName(BaseModel):
    name: str


class NewKey(BaseModel):
    project: str
    scope: str = Field("full", description="ingest, read or full.")
    ncp: bool = Field(False, description="An access key / secret key pair (NAVER Cloud).")
    name: str = Field("", description="A label.")


class KeyRef(BaseModel):
    project: str
    id: str = Field(description="The key's id (an API key's, or a signing key's access key).")


class NewUser(BaseModel):
    email: str
    projects: list[str] = Field(description="Project names (at least one).")


class UserRef(BaseModel):
    email: str


@router.get("/projects")
def list_projects(m: StoreManagement = Depends(_admin)) -> list[dict[str, Any]]:
    """Every project (`sessionscope projects list`)."""
    result: list[dict[str, Any]] = _run(m.list_projects)
    return result


@router.post("/projects")
def create_project(body: NewProject, m: StoreManagement = Depends(_admin)) -> dict[str, Any]:
    """Create a project (`sessionscope projects create`)."""
    result: dict[str, Any] = _run(m.create_project, body.name, body.organization)
    return result


@router.post("/projects/set")
def set_project(body: ProjectSettings, m: StoreManagement = Depends(_admin)) -> dict[str, Any]:
    """Change a project's settings (`sessionscope projects set`)."""
    result: dict[str, Any] = _run(
        m.set_project, body.name, body.idle_timeout_s, body.apdex_threshold_ms, body.organization
    )
    return result


@router.post("/projects/revoke-links")
def revoke_links(body: ProjectName, m: StoreManagement = Depends(_admin)) -> dict[str, Any]:
    """Refuse every sign-in link made so far for a project, and the sign-ins made with them
    (`sessionscope projects revoke-links`)."""
    result: dict[str, Any] = _run(m.revoke_links, body.name)
    return result


@router.get("/keys")
def list_keys(
    project: str = Query(description="The project."), m: StoreManagement = Depends(_admin)
) -> list[dict[str, Any]]:
    """A project's keys, revoked ones too (`sessionscope keys list`)."""
    result: list[dict[str, Any]] = _run(m.list_keys, project)
    return result


@router.post("/keys")
def create_key(body: NewKey, m: StoreManagement = Depends(_admin)) -> dict[str, Any]:
    """Create a key, shown once (`sessionscope keys create`)."""
    try:
        kind = registry.key_kind_for(body.model_dump())
    except registry.RegistryError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    result: dict[str, Any] = _run(m.create_key, body.project, kind, body.name, body.scope)
    return result


@router.post("/keys/revoke")
def revoke_key(body: KeyRef, m: StoreManagement = Depends(_admin)) -> dict[str, Any]:
    """Revoke a key (`sessionscope keys revoke`): refused at once by this server."""
    result: dict[str, Any] = _run(m.revoke_key, body.project, body.id)
    return result


@router.get("/users")
def list_users(m: StoreManagement = Depends(_admin)) -> list[dict[str, Any]]:
    """Every user, revoked ones too (`sessionscope users list`)."""
    result: list[dict[str, Any]] = _run(m.list_users)
    return result


@router.post("/users")
def create_user(body: NewUser, m: StoreManagement = Depends(_admin)) -> dict[str, Any]:
    """Create (or replace) a user with a new token (`sessionscope users create`)."""
    result: dict[str, Any] = _run(m.create_user, body.email, body.projects)
    return result


@router.post("/users/revoke")
def revoke_user(body: UserRef, m: StoreManagement = Depends(_admin)) -> dict[str, Any]:
    """Revoke a user (`sessionscope users revoke`)."""
    result: dict[str, Any] = _run(m.revoke_user, body.email)
    return result


def install(app: FastAPI) -> None:
    app.include_router(router)
