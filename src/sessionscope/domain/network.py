"""Addresses and the organisations they belong to.

A :class:`PrefixTable` maps address prefixes (CIDR, IPv4 or IPv6) to organisation names, as
configured in ``Settings.org_prefixes``; the longest matching prefix wins. Endpoint sessions
take their organisation from the agent's events first and from the table second
(:func:`with_org_name`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sessionscope.domain.sessions import EndpointSession

__all__ = ["PrefixTable", "with_org_name"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class PrefixTable:
    """Address prefixes and their organisation names, most specific prefix first."""

    entries: tuple[tuple[_Network, str], ...] = ()
    #: Prefixes of the source mapping that are not valid CIDR (they match nothing).
    invalid: tuple[str, ...] = ()

    @classmethod
    def parse(cls, prefixes: Mapping[str, str]) -> PrefixTable:
        """Build a table from ``{"84.255.240.0/20": "T-2 Access Network", ...}``.

        A prefix with host bits set (``10.1.2.3/8``) means its network (``10.0.0.0/8``);
        text that is not a prefix at all is kept in ``invalid`` and matches nothing.
        """
        entries: list[tuple[_Network, str]] = []
        invalid: list[str] = []
        for text, name in prefixes.items():
            try:
                entries.append((ipaddress.ip_network(text.strip(), strict=False), name))
            except ValueError:
                invalid.append(text)
        entries.sort(key=lambda e: (e[0].version, -e[0].prefixlen))
        return cls(tuple(entries), tuple(invalid))

    def lookup(self, address: str) -> str:
        """Return the organisation of the most specific prefix holding ``address``, or ``""``."""
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return ""
        for network, name in self.entries:
            if network.version == ip.version and ip in network:
                return name
        return ""


def with_org_name(session: EndpointSession, table: PrefixTable) -> EndpointSession:
    """Return the session with its organisation: from its events, else from ``table``."""
    if session.org_name or not table.entries:
        return session
    name = table.lookup(session.source_addr)
    return replace(session, org_name=name) if name else session
