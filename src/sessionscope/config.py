"""One frozen Settings object: flag > environment (``SESSIONSCOPE_*``) > default.

Nothing else reads the environment: the CLI builds Settings once and passes them down.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sessionscope import registry

__all__ = ["Settings", "load_settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server and CLI are configured by."""

    data_dir: Path = Path("./sessionscope-data")
    #: ``http(s)://user:password@host:port/database``; empty means the embedded engine.
    clickhouse_url: str = ""
    #: Name of a ClickHouse cluster: tables become Replicated* behind Distributed tables.
    clickhouse_cluster: str = ""
    #: Key for signing cookies and encrypting stored HMAC secrets. When unset, a random key is
    #: made once and kept in ``<data_dir>/secret.key`` (see :func:`load_settings`).
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    #: Largest accepted ingest body, after gzip decoding.
    max_body_bytes: int = 10 * 1024 * 1024
    #: Base URL of this server as users reach it (links in answers, e.g. permalinks).
    public_url: str = ""
    #: The settings vendor-compatible APIs registered (``registry.Setting``), by name; one not
    #: given has its default (:meth:`vendor`).
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Prefix-to-organisation table for endpoint ``orgName`` (CIDR -> name).
    org_prefixes: Mapping[str, str] = field(default_factory=dict)
    #: fsync every inserted part (durable acknowledgement on the embedded engine).
    fsync_inserts: bool = True
    #: Ingest journal: events acknowledged and not yet loaded into the store at most (past it,
    #: ingest answers 503 with Retry-After); the most events per loaded block; how long the
    #: loader lets a small block gather events when no read waits for it; the most loading
    #: (time at the loader's speed) the journal may hold, which bounds a read's wait.
    #: One line per request on standard error (uvicorn's access log).
    access_log: bool = True
    #: ``text`` (uvicorn's access log) or ``json``: one JSON object per request and per log
    #: record, on standard error.
    log_format: str = "text"
    journal_max_events: int = 1_000_000
    journal_block_events: int = 50_000
    journal_linger_ms: int = 500
    journal_max_lag_ms: int = 3_000
    #: Worker processes that decode and validate request bodies over 64 KiB (the server's own
    #: Python runs one thread at a time); 0 decodes them in threads of the server.
    decode_processes: int = 2
    #: Time a client has to send a request's head (request line and headers); past it the
    #: connection is closed with 408 (slow clients holding connections: slowloris).
    head_timeout_ms: int = 10_000
    #: Refused credentials (401s) one client address may have within
    #: ``auth_failure_window_s`` before its new credentials are answered 429 until the window
    #: has passed (``api.attempts``); 0 turns this off.
    auth_failure_limit: int = 30
    auth_failure_window_s: int = 60
    #: Request bodies refused as too large (413) or too slow (408) one client address may
    #: have within ``body_refusal_window_s``; past it, each of its requests is answered 429
    #: after a pause of a second, until the window has passed (``api.limits``); 0: off.
    body_refusal_limit: int = 20
    body_refusal_window_s: int = 60
    #: Connections one client address may hold open at once; more are closed as they are
    #: accepted (``api.guard``). Trusted proxies (uvicorn's ``FORWARDED_ALLOW_IPS``) are not
    #: limited; 0: no limit.
    max_connections_per_address: int = 64
    #: Refusals (4xx of a request's body or head, 429s of addresses past a limit) the server
    #: answers in a second, in all; past it, it closes the connections of clients it refused
    #: within ``body_refusal_window_s`` instead of reading their requests (``api.guard``);
    #: 0: no budget.
    refusal_budget_per_s: int = 20

    @property
    def embedded(self) -> bool:
        return not self.clickhouse_url

    @property
    def max_request_bytes(self) -> int:
        """The bound of any request body: a gzip body of the ingest limit (``max_body_bytes``
        is checked once a body is decoded)."""
        return self.max_body_bytes * 2 + 1024

    @property
    def body_timeout_s(self) -> float:
        """How long a request's body may take to arrive: twelve times the head's time."""
        return self.head_timeout_ms * 12 / 1000

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    def vendor(self, setting: registry.Setting) -> Any:
        """The value of a setting a vendor registered."""
        return self.extra.get(setting.name, setting.default)

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with the given (non-None) values replaced."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _parse_prefixes(text: str) -> dict[str, str]:
    """Parse ``CIDR=Name,CIDR=Name``; raise ValueError naming the first entry that is not one.

    Empty entries (a trailing comma) are skipped; a prefix given twice is an error.
    """
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        prefix, sep, name = (p.strip() for p in part.partition("="))
        problem = ""
        if not sep or not name:
            problem = "is not CIDR=Name"
        else:
            try:
                ipaddress.ip_network(prefix, strict=False)
            except ValueError:
                problem = f"has {prefix!r}, which is not an address prefix such as 10.0.0.0/8"
        if not problem and prefix in out:
            problem = f"names the prefix {prefix!r} a second time"
        if problem:
            raise ValueError(
                f"SESSIONSCOPE_ORG_PREFIXES: the entry {part.strip()!r} {problem} "
                "(expected CIDR=Name,CIDR=Name, e.g. 84.255.240.0/20=T-2 Access Network)"
            )
        out[prefix] = name
    return out


#: Journal settings read from ``SESSIONSCOPE_<NAME>``, with their bounds.
_JOURNAL_LIMITS = (
    ("journal_max_events", 1_000, 100_000_000),
    ("journal_block_events", 1, 1_000_000),
    ("journal_linger_ms", 0, 60_000),
    ("journal_max_lag_ms", 100, 600_000),
    ("decode_processes", 0, 64),
    ("head_timeout_ms", 100, 600_000),
    ("auth_failure_limit", 0, 1_000_000),
    ("auth_failure_window_s", 1, 86_400),
    ("body_refusal_limit", 0, 1_000_000),
    ("body_refusal_window_s", 1, 86_400),
    ("max_connections_per_address", 0, 1_000_000),
    ("refusal_budget_per_s", 0, 1_000_000),
)


#: How the server logs (``--log-format``, ``SESSIONSCOPE_LOG_FORMAT``).
LOG_FORMATS = ("text", "json")


def _bounded_int(name: str, text: str, lo: int, hi: int) -> int:
    """An integer from ``lo`` to ``hi`` read from the variable ``name``, or a ValueError
    naming it."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or not lo <= int(value) <= hi:
        raise ValueError(f"{name}: {text[:40]!r} is not a whole number from {lo} to {hi}")
    return int(value)


def load_settings(env: Mapping[str, str] | None = None, **flags: Any) -> Settings:
    """Build Settings from flags (highest), then ``SESSIONSCOPE_*`` variables, then defaults."""
    source = os.environ if env is None else env
    values: dict[str, Any] = {}
    if v := source.get("SESSIONSCOPE_DATA_DIR"):
        values["data_dir"] = Path(v)
    if v := source.get("SESSIONSCOPE_CLICKHOUSE_URL"):
        values["clickhouse_url"] = v
    if v := source.get("SESSIONSCOPE_CLICKHOUSE_CLUSTER"):
        values["clickhouse_cluster"] = v
    if v := source.get("SESSIONSCOPE_SECRET_KEY"):
        values["secret_key"] = v
    if v := source.get("SESSIONSCOPE_HOST"):
        values["host"] = v
    if v := source.get("SESSIONSCOPE_PORT"):
        values["port"] = int(v)
    if v := source.get("SESSIONSCOPE_MAX_BODY_BYTES"):
        values["max_body_bytes"] = int(v)
    if v := source.get("SESSIONSCOPE_PUBLIC_URL"):
        values["public_url"] = v
    if v := source.get("SESSIONSCOPE_ORG_PREFIXES"):
        values["org_prefixes"] = _parse_prefixes(v)
    if v := source.get("SESSIONSCOPE_FSYNC_INSERTS"):
        values["fsync_inserts"] = v.lower() not in ("0", "false", "no")
    if v := source.get("SESSIONSCOPE_ACCESS_LOG"):
        values["access_log"] = v.lower() not in ("0", "false", "no")
    if v := source.get("SESSIONSCOPE_LOG_FORMAT"):
        values["log_format"] = v.strip().lower()
    for key, lo, hi in _JOURNAL_LIMITS:
        if v := source.get(f"SESSIONSCOPE_{key.upper()}"):
            values[key] = _bounded_int(f"SESSIONSCOPE_{key.upper()}", v, lo, hi)
    extra: dict[str, Any] = {}
    for setting in registry.settings():  # those the vendor-compatible APIs registered
        if v := source.get(setting.env):
            extra[setting.name] = setting.parse(v)
    if extra:
        values["extra"] = extra
    for key, value in flags.items():
        if value is not None:
            values[key] = Path(value) if key == "data_dir" else value
    settings = Settings(**values)
    if settings.log_format not in LOG_FORMATS:
        raise ValueError(
            f"log format: {settings.log_format[:20]!r} is not one of {', '.join(LOG_FORMATS)}"
        )
    if not settings.secret_key:
        settings = replace(settings, secret_key=_data_dir_secret(settings.data_dir))
    return settings


def _data_dir_secret(data_dir: Path) -> str:
    """Read the data directory's secret key, making a random one on first use."""
    path = Path(data_dir) / "secret.key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key
