"""ThousandEyes' paths, filter keys, formats and limits."""

from __future__ import annotations

import re
from datetime import timedelta

from sessionscope.registry import FilterAlias, Setting

#: Every path under this prefix answers errors the ThousandEyes way (and is rate limited).
PREFIX = "/v6"
#: Sessions per page; ``pages.next`` links to the next page while more remain.
PAGE_SIZE = 100
#: ThousandEyes ``searchFilters`` keys and the core's endpoint session filters they map to.
FILTER_KEYS: dict[str, str] = {
    "agentId": "agent_id",
    "visitedSite": "visited_site",
    "domain": "domain",
    "protocol": "protocol",
    "port": "port",
    "sourceAddr": "source_addr",
}
#: The endpoint session filter ``domain`` (ThousandEyes' base domain): ``visited_site``, a site
#: and its subdomains; registered with the core, so the native API takes it too.
DOMAIN_FILTER = FilterAlias("endpoint", "domain", "visited_site", "hostname")
#: Requests a minute per organisation (``SESSIONSCOPE_RATE_LIMIT_PER_MINUTE``).
RATE_LIMIT = Setting(
    "rate_limit_per_minute", 240, int, "ThousandEyes-compatible rate limit per organisation"
)
#: ThousandEyes keys of user sessions that this server has no data for.
_UNSUPPORTED_KEYS = ("platform", "connection", "location", "networkId")
#: Values compared in lower case (the core stores sites and protocols in lower case).
_LOWER_KEYS = frozenset({"visitedSite", "domain", "protocol"})

_LIST_PATH = "/v6/endpoint-data/user-sessions"
_SUFFIXES = {".json": "json", ".xml": "xml"}
_LIST_PATHS = (_LIST_PATH, *(_LIST_PATH + suffix for suffix in _SUFFIXES))
_MEDIA = {
    "application/json": "json",
    "text/json": "json",
    "application/xml": "xml",
    "text/xml": "xml",
}
_CONTENT_TYPES = {"json": "application/json", "xml": "application/xml"}
_FULL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}Z?")
_AID = re.compile(r"[0-9]{1,10}")
_SESSION_ID = re.compile(r"([0-9]{1,10}):([0-9]{1,12}):([0-9A-Za-z]{8})")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ROUND = timedelta(minutes=1)
#: ``to`` names a whole second: the range runs to that second's last millisecond.
_LAST_MS = timedelta(milliseconds=999)
_MAX_BODY = 64 * 1024
_MAX_PAGE = 1_000_000
#: XML item element names of list-valued fields.
_XML_ITEMS = {"userSessions": "userSession", "pages": "page"}
#: Characters XML 1.0 cannot carry, even escaped; they are sent as U+FFFD.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_STATE_HEADERS = "thousandeyes_rate_headers"
