"""Accounts: projects, their keys (API keys, signing keys) and users."""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sessionscope import registry
from sessionscope.domain.accounts import SCOPES, ApiKey, KeyGrant, Project, User
from sessionscope.security import hash_secret, new_api_key, new_token, split_api_key, verify_secret
from sessionscope.store.engine import Engine, StoreError, to_dt

__all__ = ["Accounts"]


class Accounts(Engine):
    """Projects, keys and users, with the caches that spare each request a lookup."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Keys accepted lately, by the full key: ``(until, project id, scope, key id)``. Kept
        #: ``_cache_s`` at most on a shared store (a key revoked elsewhere is refused here
        #: within 5 s), 30 s on an exclusive one (which revokes them itself, and forgets them).
        self._key_cache: dict[str, tuple[float, int, str, str]] = {}
        self._key_id_cache: dict[str, tuple[float, int | None]] = {}
        self._key_s = min(30.0, self._cache_s)
        #: Projects by id, kept for ``_cache_s``: every request looks its project up. An
        #: exclusive store sees every change (it makes them), so it keeps them until then.
        self._project_cache: dict[int, tuple[float, Project]] = {}

    # ---------------------------------------------------------------- projects

    def create_project(self, name: str, organization: str = "") -> Project:
        name = name.strip()
        if not name or len(name) > 100:
            raise StoreError("project name must be 1 to 100 characters")
        with self._meta_lock:
            if self.get_project_by_name(name) is not None:
                raise StoreError(f"project {name!r} already exists")
            rows = self.query("SELECT max(id) FROM projects FINAL")
            new_id = int(rows[0][0] or 0) + 1
            now = datetime.now(UTC)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # stored in ms
            project = Project(new_id, name, now, organization=organization)
            self._write_project(project)
        return project

    def _write_project(self, p: Project) -> None:
        self.client.insert(
            "projects",
            [
                [
                    p.id,
                    p.name,
                    p.created_at,
                    p.idle_timeout_s,
                    p.apdex_threshold_ms,
                    p.organization,
                    p.signin_generation,
                    _time.time_ns(),
                ]
            ],
            column_names=[
                "id",
                "name",
                "created_at",
                "idle_timeout_s",
                "apdex_threshold_ms",
                "organization",
                "signin_generation",
                "version",
            ],
            settings=self.insert_settings,
        )
        self._project_cache.pop(p.id, None)

    def update_project(
        self,
        project: Project,
        *,
        idle_timeout_s: int | None = None,
        apdex_threshold_ms: int | None = None,
        organization: str | None = None,
    ) -> Project:
        """Change a project's settings; return the updated project."""
        updated = Project(
            project.id,
            project.name,
            project.created_at,
            idle_timeout_s if idle_timeout_s is not None else project.idle_timeout_s,
            apdex_threshold_ms if apdex_threshold_ms is not None else project.apdex_threshold_ms,
            organization if organization is not None else project.organization,
            project.signin_generation,
        )
        self._write_project(updated)
        return updated

    def revoke_signin_links(self, project: Project) -> Project:
        """Refuse every sign-in link made so far for the project, and the dashboard sign-ins
        made with them (the next generation of links works)."""
        with self._meta_lock:
            fresh = self.get_project_by_name(project.name) or project
            updated = Project(
                fresh.id,
                fresh.name,
                fresh.created_at,
                fresh.idle_timeout_s,
                fresh.apdex_threshold_ms,
                fresh.organization,
                fresh.signin_generation + 1,
            )
            self._write_project(updated)
        return updated

    _PROJECT_SELECT = (
        "SELECT id, name, toUnixTimestamp64Milli(created_at), idle_timeout_s, "
        "apdex_threshold_ms, organization, signin_generation FROM projects FINAL"
    )

    @staticmethod
    def _project(row: Sequence[Any]) -> Project:
        return Project(
            int(row[0]), row[1], to_dt(row[2]), int(row[3]), int(row[4]), row[5], int(row[6])
        )

    def list_projects(self) -> list[Project]:
        return [self._project(r) for r in self.query(self._PROJECT_SELECT + " ORDER BY id")]

    def get_project(self, project_id: int) -> Project | None:
        now = _time.monotonic()
        cached = self._project_cache.get(project_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        rows = self.query(self._PROJECT_SELECT + " WHERE id = {id:UInt32}", {"id": project_id})
        if not rows:
            return None
        project = self._project(rows[0])
        self._project_cache[project_id] = (now + self._cache_s, project)
        return project

    def get_project_by_name(self, name: str) -> Project | None:
        rows = self.query(self._PROJECT_SELECT + " WHERE name = {n:String}", {"n": name})
        return self._project(rows[0]) if rows else None

    # ---------------------------------------------------------------- credentials

    def _write_key(self, key: ApiKey, secret_hash: str, secret_enc: str, version: int) -> None:
        self.client.insert(
            "api_keys",
            [
                [
                    key.key_id,
                    key.project_id,
                    key.kind,
                    secret_hash,
                    secret_enc,
                    key.name,
                    key.created_at,
                    int(key.revoked),
                    version,
                    key.scope,
                ]
            ],
            column_names=[
                "key_id",
                "project_id",
                "kind",
                "secret_hash",
                "secret_enc",
                "name",
                "created_at",
                "revoked",
                "version",
                "scope",
            ],
            settings=self.insert_settings,
        )

    @staticmethod
    def _scope(scope: str) -> str:
        if scope not in SCOPES:
            raise StoreError(f"scope must be one of {', '.join(SCOPES)}, not {scope[:20]!r}")
        return scope

    def create_api_key(self, project_id: int, name: str = "", scope: str = "full") -> str:
        """Create a project API key; return it (the only time it is seen in clear). Its id
        is its second part (``split_api_key``)."""
        key_id, secret, full = new_api_key()
        key = ApiKey(key_id, project_id, "api", name, _now_ms(), self._scope(scope))
        self._write_key(key, hash_secret(secret), "", 1)
        return full

    def create_signing_key(
        self, project_id: int, name: str = "", scope: str = "full", kind: str | None = None
    ) -> tuple[str, str]:
        """Create an access key / secret key pair for HMAC-signed requests, of a signing-key
        kind a vendor registered (``registry.KeyKind``; without ``kind``, the only one)."""
        try:
            kind_name = registry.key_kind(kind).name
        except registry.RegistryError as exc:
            raise StoreError(str(exc)) from None
        access_key = new_token(15).replace("-", "A").replace("_", "B")[:20].upper()
        secret = new_token(30)
        key = ApiKey(access_key, project_id, kind_name, name, _now_ms(), self._scope(scope))
        self._write_key(key, "", self._box.seal(secret), 1)
        return access_key, secret

    _KEY_SELECT = (
        "SELECT key_id, project_id, kind, name, toUnixTimestamp64Milli(created_at), scope, "
        "revoked FROM api_keys FINAL"
    )

    @staticmethod
    def _key(r: Sequence[Any]) -> ApiKey:
        return ApiKey(r[0], int(r[1]), r[2], r[3], to_dt(r[4]), r[5], bool(r[6]))

    def list_keys(self, project_id: int, *, revoked: bool = False) -> list[ApiKey]:
        """The project's keys, oldest first: the live ones, and with ``revoked`` the revoked
        ones too."""
        rows = self.query(
            self._KEY_SELECT
            + " WHERE project_id = {p:UInt32}"
            + ("" if revoked else " AND revoked = 0")
            + " ORDER BY created_at, key_id",
            {"p": project_id},
        )
        return [self._key(r) for r in rows]

    def revoke_key(self, project_id: int, key_id: str) -> ApiKey | None:
        """Revoke a key (an API key or a signing key) of the project; return it as revoked,
        or None when the project has no such key. Refused here at once (every cache of it is
        dropped), on other servers sharing the store within ``_cache_s``."""
        rows = self.query(
            "SELECT key_id, project_id, kind, name, toUnixTimestamp64Milli(created_at), scope, "
            "revoked, secret_hash, secret_enc, version FROM api_keys FINAL "
            "WHERE key_id = {k:String} AND project_id = {p:UInt32}",
            {"k": key_id, "p": project_id},
        )
        if not rows:
            return None
        key = self._key(rows[0])
        revoked = ApiKey(
            key.key_id, key.project_id, key.kind, key.name, key.created_at, key.scope, True
        )
        if not key.revoked:
            self._write_key(revoked, rows[0][7], rows[0][8], int(rows[0][9]) + 1)
        with self._meta_lock:
            for full in [k for k, v in self._key_cache.items() if v[3] == key_id]:
                self._key_cache.pop(full, None)
            self._key_id_cache.pop(key_id, None)
        return revoked

    def remembered_api_key(self, full_key: str) -> KeyGrant | None:
        """What an API key ``key_grant`` accepted lately grants, from memory alone (None: not
        remembered; ask ``key_grant``). For callers that must not block."""
        now = _time.monotonic()
        cached = self._key_cache.get(full_key)
        if cached is None or cached[0] <= now:
            return None
        project = self._project_cache.get(cached[1])
        if project is None or project[0] <= now:
            return None
        return KeyGrant(project[1], cached[2], cached[3])

    def key_grant(self, full_key: str) -> KeyGrant | None:
        """What a live API key grants (its project and scope), or None."""
        now = _time.monotonic()
        cached = self._key_cache.get(full_key)
        if cached and cached[0] > now:
            project = self.get_project(cached[1])
            return KeyGrant(project, cached[2], cached[3]) if project is not None else None
        parts = split_api_key(full_key)
        if parts is None:
            return None
        key_id, secret = parts
        rows = self.query(
            "SELECT project_id, secret_hash, scope FROM api_keys FINAL "
            "WHERE key_id = {k:String} AND kind = 'api' AND revoked = 0",
            {"k": key_id},
        )
        if not rows or not verify_secret(secret, rows[0][1]):
            return None
        project_id, scope = int(rows[0][0]), str(rows[0][2])
        self._key_cache[full_key] = (now + self._key_s, project_id, scope, key_id)
        project = self.get_project(project_id)
        return KeyGrant(project, scope, key_id) if project is not None else None

    def verify_api_key(self, full_key: str) -> Project | None:
        """The project of a live API key whatever its scope, or None."""
        grant = self.key_grant(full_key)
        return grant.project if grant is not None else None

    def api_key_project(self, key_id: str) -> int | None:
        """The project of a live API key that may read, by its id (no secret: for a sign-in
        made with the key, checked at every page), or None; remembered as long as
        ``key_grant``'s."""
        now = _time.monotonic()
        cached = self._key_id_cache.get(key_id)
        if cached and cached[0] > now:
            return cached[1]
        rows = self.query(
            "SELECT project_id FROM api_keys FINAL WHERE key_id = {k:String} AND kind = 'api' "
            "AND revoked = 0 AND scope IN ('read', 'full')",
            {"k": key_id},
        )
        found = int(rows[0][0]) if rows else None
        self._key_id_cache[key_id] = (now + self._key_s, found)
        return found

    def signing_key(self, access_key: str, kind: str | None = None) -> tuple[int, str, str] | None:
        """``(project_id, secret, scope)`` of a live signing key of ``kind`` (without it, of any
        signing kind), or None (never cached: a revoked one is refused at once everywhere)."""
        rows = self.query(
            "SELECT project_id, secret_enc, scope FROM api_keys FINAL "
            "WHERE key_id = {k:String} AND revoked = 0 AND "
            + ("kind = {kind:String}" if kind is not None else "kind != 'api'"),
            {"k": access_key} if kind is None else {"k": access_key, "kind": kind},
        )
        if not rows:
            return None
        secret = self._box.open(rows[0][1])
        return (int(rows[0][0]), secret, str(rows[0][2])) if secret is not None else None

    def signing_secret(self, access_key: str, kind: str | None = None) -> tuple[int, str] | None:
        """Return ``(project_id, secret)`` for a live access key (of ``kind``), or None."""
        found = self.signing_key(access_key, kind)
        return (found[0], found[1]) if found is not None else None

    # ---------------------------------------------------------------- users

    def create_user(self, email: str, project_ids: Sequence[int], organization: str = "") -> str:
        """Create (or replace, revoked or not) a user with access to projects; return the new
        API token."""
        email = email.strip().lower()
        if "@" not in email or len(email) > 254:
            raise StoreError("email must look like name@example.com")
        if not project_ids:
            raise StoreError("a user needs at least one project")
        token = new_token(24)
        user = User(email, tuple(project_ids), organization, _now_ms())
        self._write_user(user, hash_secret(token), _time.time_ns())
        return token

    def _write_user(self, user: User, token_hash: str, version: int) -> None:
        self.client.insert(
            "users",
            [
                [
                    user.email,
                    token_hash,
                    list(user.project_ids),
                    user.organization,
                    user.created_at or _now_ms(),
                    version,
                    int(user.revoked),
                ]
            ],
            column_names=[
                "email",
                "token_hash",
                "project_ids",
                "organization",
                "created_at",
                "version",
                "revoked",
            ],
            settings=self.insert_settings,
        )

    _USER_SELECT = (
        "SELECT email, project_ids, organization, toUnixTimestamp64Milli(created_at), revoked "
        "FROM users FINAL"
    )

    @staticmethod
    def _user(r: Sequence[Any]) -> User:
        return User(r[0], tuple(int(x) for x in r[1]), r[2], to_dt(r[3]), bool(r[4]))

    def list_users(self) -> list[User]:
        """Every user, revoked ones too, by email."""
        return [self._user(r) for r in self.query(self._USER_SELECT + " ORDER BY email")]

    def revoke_user(self, email: str) -> User | None:
        """Revoke a user: the token and every dashboard sign-in made with it are refused from
        now on (users are never cached). None when there is no such user."""
        rows = self.query(
            self._USER_SELECT.replace("revoked FROM", "revoked, token_hash, version FROM")
            + " WHERE email = {e:String}",
            {"e": email.strip().lower()},
        )
        if not rows:
            return None
        user = self._user(rows[0])
        revoked = User(user.email, user.project_ids, user.organization, user.created_at, True)
        if not user.revoked:
            self._write_user(revoked, rows[0][5], max(int(rows[0][6]) + 1, _time.time_ns()))
        return revoked

    def verify_user(self, email: str, token: str) -> User | None:
        rows = self.query(
            "SELECT email, token_hash, project_ids, organization FROM users FINAL "
            "WHERE email = {e:String} AND revoked = 0",
            {"e": email.strip().lower()},
        )
        if not rows or not verify_secret(token, rows[0][1]):
            return None
        return User(rows[0][0], tuple(int(x) for x in rows[0][2]), rows[0][3])

    def user_by_token(self, token: str) -> User | None:
        rows = self.query(
            "SELECT email, project_ids, organization FROM users FINAL "
            "WHERE token_hash = {h:String} AND revoked = 0",
            {"h": hash_secret(token)},
        )
        return User(rows[0][0], tuple(int(x) for x in rows[0][1]), rows[0][2]) if rows else None

    def get_user(self, email: str) -> User | None:
        """The live user with this email (no token check), or None."""
        rows = self.query(
            "SELECT email, project_ids, organization FROM users FINAL "
            "WHERE email = {e:String} AND revoked = 0",
            {"e": email.strip().lower()},
        )
        return User(rows[0][0], tuple(int(x) for x in rows[0][1]), rows[0][2]) if rows else None


def _now_ms() -> datetime:
    """Now, to the millisecond (as stored)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
