"""Dashboard sign-in: who is looking, kept in a signed cookie and checked again on every page.

A sign-in is made with a project API key that may read, with a user's email and token, or with a
sign-in link (``sessionscope demo`` prints one). The cookie holds only the project id and how the
sign-in was made (the API key's id, the user's email, or the link's sign-in generation), signed
with ``settings.secret_key``; every request checks that this still grants the project (the key
is still live and may read, the user is live and still has it, the project's links were not
revoked since: ``sessionscope projects revoke-links``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from sessionscope.api.context import AppContext
from sessionscope.config import Settings
from sessionscope.domain.accounts import Project, allows
from sessionscope.security import split_api_key

__all__ = [
    "COOKIE",
    "COOKIE_MAX_AGE_S",
    "LINK_MAX_AGE_S",
    "KeyCannotRead",
    "SignIn",
    "Viewer",
    "decode_cookie",
    "decode_link",
    "encode_cookie",
    "resolve",
    "sign_in_link",
    "sign_in_with_key",
    "sign_in_with_user",
]

#: Name of the dashboard's sign-in cookie.
COOKIE = "sessionscope_dashboard"
#: How long a sign-in lasts.
COOKIE_MAX_AGE_S = 7 * 24 * 3600
#: How long a sign-in link works.
LINK_MAX_AGE_S = 7 * 24 * 3600

_COOKIE_SALT = "sessionscope.dashboard.cookie"
_LINK_SALT = "sessionscope.dashboard.link"


class KeyCannotRead(Exception):
    """A valid API key whose scope does not allow reading (an ingest key)."""

    def __init__(self, scope: str) -> None:
        super().__init__(scope)
        self.scope = scope


@dataclass(frozen=True, slots=True)
class SignIn:
    """What the cookie says: the project, and ``via`` ``key`` / ``user`` / ``link`` with ``ref``
    (the API key's id, the user's email, or the link's sign-in generation: empty is 0)."""

    project_id: int
    via: str
    ref: str = ""


@dataclass(frozen=True, slots=True)
class Viewer:
    """A checked sign-in: the current project and every project this sign-in may switch to."""

    sign_in: SignIn
    project: Project
    projects: tuple[Project, ...]

    @property
    def label(self) -> str:
        if self.sign_in.via == "user":
            return self.sign_in.ref
        if self.sign_in.via == "key":
            return f"API key {self.sign_in.ref}"
        return "sign-in link"


def _serializer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    if not settings.secret_key:
        raise RuntimeError("settings.secret_key is empty (load settings with load_settings)")
    return URLSafeTimedSerializer(settings.secret_key, salt=salt)


def encode_cookie(settings: Settings, sign_in: SignIn) -> str:
    """Sign a sign-in for the cookie."""
    return str(
        _serializer(settings, _COOKIE_SALT).dumps(
            {"p": sign_in.project_id, "v": sign_in.via, "r": sign_in.ref}
        )
    )


def decode_cookie(settings: Settings, value: str | None) -> SignIn | None:
    """The sign-in a cookie carries, or None when absent, forged or expired."""
    if not value:
        return None
    try:
        data: Any = _serializer(settings, _COOKIE_SALT).loads(value, max_age=COOKIE_MAX_AGE_S)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    pid, via, ref = data.get("p"), data.get("v"), data.get("r", "")
    if not isinstance(pid, int) or via not in ("key", "user", "link") or not isinstance(ref, str):
        return None
    return SignIn(pid, via, ref)


def sign_in_link(settings: Settings, project_id: int, generation: int = 0) -> str:
    """An absolute URL that signs its visitor in to a project (valid ``LINK_MAX_AGE_S``, and
    while the project's sign-in generation is ``generation``)."""
    data = {"p": project_id, "g": generation} if generation else {"p": project_id}
    token = _serializer(settings, _LINK_SALT).dumps(data)
    # ``token`` is a query parameter the access log redacts (``sessionscope.logs``).
    return f"{settings.base_url}/login?token={token}"


def decode_link(settings: Settings, token: str) -> tuple[int, int] | None:
    """``(project id, sign-in generation)`` of a sign-in link's token, or None when forged or
    expired."""
    try:
        data: Any = _serializer(settings, _LINK_SALT).loads(token, max_age=LINK_MAX_AGE_S)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    pid, generation = data.get("p"), data.get("g", 0)
    if not isinstance(pid, int) or not isinstance(generation, int):
        return None
    return pid, generation


def sign_in_with_key(ctx: AppContext, api_key: str) -> SignIn | None:
    """Check a project API key; return the sign-in it grants, or None; ``KeyCannotRead`` for
    a valid key that may not read."""
    key = api_key.strip()
    if split_api_key(key) is None:
        return None
    grant = ctx.store.key_grant(key)
    if grant is None:
        return None
    if not allows(grant.scope, "read"):
        raise KeyCannotRead(grant.scope)
    return SignIn(grant.project.id, "key", grant.key_id)


def sign_in_with_user(
    ctx: AppContext, email: str, token: str, project_id: int | None = None
) -> SignIn | None:
    """Check a user's email and token; sign in to ``project_id`` or the user's first project."""
    user = ctx.store.verify_user(email, token.strip())
    if user is None or not user.project_ids:
        return None
    pid = project_id if project_id in user.project_ids else user.project_ids[0]
    return SignIn(pid, "user", user.email)


def resolve(ctx: AppContext, sign_in: SignIn | None) -> Viewer | None:
    """Check that a sign-in still grants its project; return who is looking, or None."""
    if sign_in is None:
        return None
    store = ctx.store
    if sign_in.via == "user":
        user = store.get_user(sign_in.ref)
        if user is None or sign_in.project_id not in user.project_ids:
            return None
        allowed = set(user.project_ids)
        projects = tuple(p for p in store.list_projects() if p.id in allowed)
        current = next((p for p in projects if p.id == sign_in.project_id), None)
        return Viewer(sign_in, current, projects) if current is not None else None
    project = store.get_project(sign_in.project_id)
    if project is None:
        return None
    if sign_in.via == "key" and store.api_key_project(sign_in.ref) != project.id:
        return None
    if sign_in.via == "link" and (sign_in.ref or "0") != str(project.signin_generation):
        return None
    return Viewer(sign_in, project, (project,))
