"""What the vendor-compatible APIs add to the core, each registered by its own module.

The core names no vendor. A module of ``compat/`` declares one :class:`Vendor`: how it installs
its routes, the signing-key kinds it authenticates with (:class:`KeyKind`), the settings it
reads (:class:`Setting`), the session filters it adds under other names (:class:`FilterAlias`)
and its part of ``sessionscope demo`` (:class:`DemoHooks`); ``compat/__init__`` registers them
(:func:`register`). The core asks this module: the store which kind a new signing key has, the
settings loader which variables to read, the session lists which filter names to accept, the
app factory which routes to install, the demo what to print.

The registry is filled once per process: the first question loads the providers
(:data:`PROVIDERS`, imported like plugins), so the answer is the same whichever entry point
(the server, a command, a test of the store) asks first. Nothing here may ask it at import
time (a provider imports the core).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sessionscope.domain.accounts import Project
    from sessionscope.store.clickhouse import ClickHouseStore

__all__ = [
    "PROVIDERS",
    "DemoHooks",
    "FilterAlias",
    "KeyKind",
    "RegistryError",
    "Setting",
    "Vendor",
    "demos",
    "filter_aliases",
    "key_kind",
    "key_kind_for",
    "key_kinds",
    "register",
    "settings",
    "vendors",
]

#: Modules whose import registers vendors.
PROVIDERS: tuple[str, ...] = ("sessionscope.compat",)

#: How session filters match: ``exact`` (any of the values), ``hostname`` (a site and its
#: subdomains, case-insensitive: ``example.com`` matches ``www.example.com``).
MATCHES = ("exact", "hostname")


class RegistryError(Exception):
    """A vendor declared something the core cannot take (a name taken twice, an unknown kind)."""


@dataclass(frozen=True, slots=True)
class KeyKind:
    """A kind of signing key: an access key / secret key pair whose secret is kept encrypted
    and used to check signed requests (the access key is the key's id)."""

    #: Stored in ``api_keys.kind`` (``api`` is the core's bearer API keys).
    name: str
    #: How it is asked for: ``keys create --<option>``, the management API's body field.
    option: str
    #: One line for ``--help`` and the API docs.
    help: str


@dataclass(frozen=True, slots=True)
class Setting:
    """A setting a vendor reads, in ``Settings.extra`` under ``name``; from the variable
    ``SESSIONSCOPE_<NAME>`` (``parse`` turns its text into the value, raising ValueError)."""

    name: str
    default: Any
    parse: Callable[[str], Any]
    help: str

    @property
    def env(self) -> str:
        return f"SESSIONSCOPE_{self.name.upper()}"


@dataclass(frozen=True, slots=True)
class FilterAlias:
    """Another name of a session filter of ``kind``: it filters ``target``'s column, matched
    by ``match`` (one of :data:`MATCHES`)."""

    kind: str
    name: str
    target: str
    match: str = "exact"


def _nothing(store: ClickHouseStore, project: Project, creds: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True, slots=True)
class DemoHooks:
    """A vendor's part of the demo: ``credentials(store, project, creds)`` adds (or keeps) what
    it needs in ``creds`` (``project_id``, ``api_key`` and what the vendors added);
    ``help(base_url, creds)`` returns the lines printed for it (rich markup)."""

    help: Callable[[str, dict[str, Any]], list[str]]
    credentials: Callable[[ClickHouseStore, Project, dict[str, Any]], None] = _nothing


@dataclass(frozen=True, slots=True)
class Vendor:
    """Everything one vendor-compatible API adds to the core."""

    name: str
    #: ``install(app)`` adds its routes to the FastAPI app and registers its error shape.
    install: Callable[[Any], None]
    key_kinds: tuple[KeyKind, ...] = ()
    settings: tuple[Setting, ...] = ()
    filters: tuple[FilterAlias, ...] = ()
    demo: DemoHooks | None = None


_vendors: dict[str, Vendor] = {}
_lock = threading.RLock()
_loaded = False


def register(vendor: Vendor) -> None:
    """Add a vendor (again: replaced). Refuses a key kind, setting or filter name that another
    vendor (or the core) has."""
    with _lock:
        others = [v for v in _vendors.values() if v.name != vendor.name]
        for kind in vendor.key_kinds:
            if kind.name == "api" or any(kind.name == k.name for v in others for k in v.key_kinds):
                raise RegistryError(f"{vendor.name}: key kind {kind.name!r} is taken")
        for s in vendor.settings:
            if any(s.name == o.name for v in others for o in v.settings):
                raise RegistryError(f"{vendor.name}: setting {s.name!r} is taken")
        for f in vendor.filters:
            if f.match not in MATCHES:
                raise RegistryError(f"{vendor.name}: filter {f.name!r}: no match {f.match!r}")
            if any((f.kind, f.name) == (o.kind, o.name) for v in others for o in v.filters):
                raise RegistryError(f"{vendor.name}: {f.kind} filter {f.name!r} is taken")
        _vendors[vendor.name] = vendor


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if not _loaded:
            # Marked first: a provider's import asks nothing of the registry, but a question
            # asked meanwhile must not import it a second time.
            _loaded = True
            try:
                for name in PROVIDERS:
                    importlib.import_module(name)
            except BaseException:
                _loaded = False  # asked again, it fails again, never answers half
                raise


def vendors() -> tuple[Vendor, ...]:
    """Every registered vendor, in the order registered."""
    _load()
    return tuple(_vendors.values())


def key_kinds() -> tuple[KeyKind, ...]:
    """Every signing-key kind."""
    return tuple(k for v in vendors() for k in v.key_kinds)


def key_kind(name: str | None = None) -> KeyKind:
    """The signing-key kind ``name``; without one, the only kind there is."""
    kinds = key_kinds()
    found = [k for k in kinds if name is None or k.name == name]
    if len(found) != 1:
        known = ", ".join(k.name for k in kinds) or "none"
        raise RegistryError(f"no single signing key kind {name or ''!r} (registered: {known})")
    return found[0]


def key_kind_for(options: dict[str, bool]) -> str:
    """The key kind asked for by options (``{option: asked}``, as ``keys create --<option>``
    and the management API take them): a signing-key kind's name, or ``api``."""
    asked = [k.name for k in key_kinds() if options.get(k.option)]
    if len(asked) > 1:
        raise RegistryError(f"ask for one key kind, not {', '.join(asked)}")
    return asked[0] if asked else "api"


def settings() -> tuple[Setting, ...]:
    """Every vendor setting."""
    return tuple(s for v in vendors() for s in v.settings)


def filter_aliases(kind: str) -> tuple[FilterAlias, ...]:
    """The filter names vendors add to sessions of ``kind``."""
    return tuple(f for v in vendors() for f in v.filters if f.kind == kind)


def demos() -> tuple[DemoHooks, ...]:
    """Every vendor's demo hooks, in the order the demo prints them (the order registered)."""
    return tuple(v.demo for v in vendors() if v.demo is not None)
