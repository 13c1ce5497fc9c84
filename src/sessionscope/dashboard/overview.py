"""The overview page: a time window and one section per kind the project has data of.

Every number comes from the core (``SessionService`` and the store's channel and event reads),
one call per chart; the sections (``dashboard.sections``) only shape values for the templates.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sessionscope.dashboard.kinds import SEND_HINTS
from sessionscope.dashboard.sections.channel import channel_section
from sessionscope.dashboard.sections.common import Section
from sessionscope.dashboard.sections.desktop import desktop_section
from sessionscope.dashboard.sections.endpoint import endpoint_section
from sessionscope.dashboard.sections.player import player_section
from sessionscope.dashboard.window import Window
from sessionscope.domain.accounts import Project
from sessionscope.domain.events import KINDS
from sessionscope.service import SessionService

__all__ = ["Overview", "build_overview"]


@dataclass(frozen=True, slots=True)
class Overview:
    window: Window
    sections: list[Section]
    #: Kinds without any stored event, with what to send for them.
    missing: list[tuple[str, str]]


#: The sections are built side by side: each waits mostly on its queries, and the engine
#: runs queries from several threads at once.
_BUILDERS = ThreadPoolExecutor(max_workers=len(KINDS), thread_name_prefix="overview")


def build_overview(
    service: SessionService, project: Project, window: Window, now: datetime
) -> Overview:
    """Build every section of the overview for kinds with stored events."""
    kinds = set(service.event_kinds(project))
    builders = {
        "player": player_section,
        "channel": channel_section,
        "desktop": desktop_section,
        "endpoint": endpoint_section,
    }
    present = [k for k in KINDS if k in kinds]
    sections = list(_BUILDERS.map(lambda k: builders[k](service, project, window, now), present))
    return Overview(window, sections, [(k, SEND_HINTS[k]) for k in KINDS if k not in kinds])
