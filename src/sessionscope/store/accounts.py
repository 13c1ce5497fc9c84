"""Accounts: projects, their keys (API keys, signing keys) and users."""

from __future__ import annotations

import time as _time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sessionscope.domain.accounts import ApiKey, Project, User
from sessionscope.security import hash_secret, new_api_key, new_token, split_api_key, verify_secret
from sessionscope.store.engine import Engine, StoreError, to_dt

__all__ = ["Accounts"]


class Accounts(Engine):
    """Projects, keys and users, with the caches that spare each request a lookup."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._key_cache: dict[str, tuple[float, int]] = {}
        self._key_id_cache: dict[str, tuple[float, int | None]] = {}
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
        )
        self._write_project(updated)
        return updated

    _PROJECT_SELECT = (
        "SELECT id, name, toUnixTimestamp64Milli(created_at), idle_timeout_s, "
        "apdex_threshold_ms, organization FROM projects FINAL"
    )

    @staticmethod
    def _project(row: Sequence[Any]) -> Project:
        return Project(int(row[0]), row[1], to_dt(row[2]), int(row[3]), int(row[4]), row[5])

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

    def _write_key(
        self, key_id: str, project_id: int, kind: str, secret_hash: str, secret_enc: str, name: str
    ) -> None:
        self.client.insert(
            "api_keys",
            [[key_id, project_id, kind, secret_hash, secret_enc, name, datetime.now(UTC), 0, 1]],
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
            ],
            settings=self.insert_settings,
        )

    def create_api_key(self, project_id: int, name: str = "") -> str:
        """Create a project API key; return it (the only time it is seen in clear)."""
        key_id, secret, full = new_api_key()
        self._write_key(key_id, project_id, "api", hash_secret(secret), "", name)
        return full

    def create_signing_key(self, project_id: int, name: str = "") -> tuple[str, str]:
        """Create an access key / secret key pair for HMAC-signed requests (NAVER Cloud)."""
        access_key = new_token(15).replace("-", "A").replace("_", "B")[:20].upper()
        secret = new_token(30)
        self._write_key(access_key, project_id, "ncp", "", self._box.seal(secret), name)
        return access_key, secret

    def list_keys(self, project_id: int) -> list[ApiKey]:
        rows = self.query(
            "SELECT key_id, project_id, kind, name, toUnixTimestamp64Milli(created_at) "
            "FROM api_keys FINAL WHERE project_id = {p:UInt32} AND revoked = 0 "
            "ORDER BY created_at",
            {"p": project_id},
        )
        return [ApiKey(r[0], int(r[1]), r[2], r[3], to_dt(r[4])) for r in rows]

    def remembered_api_key(self, full_key: str) -> Project | None:
        """The project of an API key ``verify_api_key`` accepted lately, from memory alone
        (None: not remembered; ask ``verify_api_key``). For callers that must not block."""
        now = _time.monotonic()
        cached = self._key_cache.get(full_key)
        if cached is None or cached[0] <= now:
            return None
        project = self._project_cache.get(cached[1])
        return project[1] if project is not None and project[0] > now else None

    def verify_api_key(self, full_key: str) -> Project | None:
        """Return the project of a valid API key, or None."""
        now = _time.monotonic()
        cached = self._key_cache.get(full_key)
        if cached and cached[0] > now:
            return self.get_project(cached[1])
        parts = split_api_key(full_key)
        if parts is None:
            return None
        key_id, secret = parts
        rows = self.query(
            "SELECT project_id, secret_hash FROM api_keys FINAL "
            "WHERE key_id = {k:String} AND kind = 'api' AND revoked = 0",
            {"k": key_id},
        )
        if not rows or not verify_secret(secret, rows[0][1]):
            return None
        self._key_cache[full_key] = (now + 30.0, int(rows[0][0]))
        return self.get_project(int(rows[0][0]))

    def api_key_project(self, key_id: str) -> int | None:
        """The project of a live API key by its id (no secret: for a sign-in made with the
        key, checked at every page), or None; remembered as long as ``verify_api_key``'s."""
        now = _time.monotonic()
        cached = self._key_id_cache.get(key_id)
        if cached and cached[0] > now:
            return cached[1]
        rows = self.query(
            "SELECT project_id FROM api_keys FINAL "
            "WHERE key_id = {k:String} AND kind = 'api' AND revoked = 0",
            {"k": key_id},
        )
        found = int(rows[0][0]) if rows else None
        self._key_id_cache[key_id] = (now + 30.0, found)
        return found

    def signing_secret(self, access_key: str) -> tuple[int, str] | None:
        """Return ``(project_id, secret)`` for an access key, or None."""
        rows = self.query(
            "SELECT project_id, secret_enc FROM api_keys FINAL "
            "WHERE key_id = {k:String} AND kind = 'ncp' AND revoked = 0",
            {"k": access_key},
        )
        if not rows:
            return None
        secret = self._box.open(rows[0][1])
        return (int(rows[0][0]), secret) if secret is not None else None

    def create_user(self, email: str, project_ids: Sequence[int], organization: str = "") -> str:
        """Create (or replace) a user with access to projects; return the new API token."""
        email = email.strip().lower()
        if "@" not in email or len(email) > 254:
            raise StoreError("email must look like name@example.com")
        if not project_ids:
            raise StoreError("a user needs at least one project")
        token = new_token(24)
        self.client.insert(
            "users",
            [
                [
                    email,
                    hash_secret(token),
                    list(project_ids),
                    organization,
                    datetime.now(UTC),
                    _time.time_ns(),
                ]
            ],
            column_names=[
                "email",
                "token_hash",
                "project_ids",
                "organization",
                "created_at",
                "version",
            ],
            settings=self.insert_settings,
        )
        return token

    def verify_user(self, email: str, token: str) -> User | None:
        rows = self.query(
            "SELECT email, token_hash, project_ids, organization FROM users FINAL "
            "WHERE email = {e:String}",
            {"e": email.strip().lower()},
        )
        if not rows or not verify_secret(token, rows[0][1]):
            return None
        return User(rows[0][0], tuple(int(x) for x in rows[0][2]), rows[0][3])

    def user_by_token(self, token: str) -> User | None:
        rows = self.query(
            "SELECT email, project_ids, organization FROM users FINAL "
            "WHERE token_hash = {h:String}",
            {"h": hash_secret(token)},
        )
        return User(rows[0][0], tuple(int(x) for x in rows[0][1]), rows[0][2]) if rows else None

    def get_user(self, email: str) -> User | None:
        """The user with this email (no token check), or None."""
        rows = self.query(
            "SELECT email, project_ids, organization FROM users FINAL WHERE email = {e:String}",
            {"e": email.strip().lower()},
        )
        return User(rows[0][0], tuple(int(x) for x in rows[0][1]), rows[0][2]) if rows else None
