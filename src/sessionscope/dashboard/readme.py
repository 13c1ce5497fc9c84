"""Just enough Markdown to show the README as a page: headings, paragraphs, lists, tables, code.

Output is plain values (text segments); the template escapes everything, so no HTML from the
Markdown source ever reaches the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Block", "Segment", "markdown_blocks", "slug"]

_INLINE = re.compile(
    r"`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)\)|\*\*([^*]+)\*\*|!\[([^\]]*)\]\(([^)\s]+)\)"
)


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of inline text: plain, ``code``, ``strong``, a link (``href``), or an ``image``
    (its alt text: the repository's images are not served with the package)."""

    text: str
    style: str = ""
    href: str = ""


@dataclass(frozen=True, slots=True)
class Block:
    """A block: ``h1``-``h3`` (with ``id``), ``p``, ``ul``, ``pre`` or ``table``."""

    kind: str
    lines: list[list[Segment]] = field(default_factory=list)
    id: str = ""
    rows: list[list[list[Segment]]] = field(default_factory=list)
    code: str = ""


def slug(title: str) -> str:
    """GitHub-style anchor of a heading: ``Sending events`` -> ``sending-events``."""
    text = re.sub(r"[^\w\- ]", "", title.lower()).strip()
    return re.sub(r"\s", "-", text)


def _inline(text: str) -> list[Segment]:
    out: list[Segment] = []
    pos = 0
    for m in _INLINE.finditer(text):
        if m.start() > pos:
            out.append(Segment(text[pos : m.start()]))
        if m.group(1) is not None:
            out.append(Segment(m.group(1), "code"))
        elif m.group(5) is not None:
            out.append(Segment(m.group(5), "image"))
        elif m.group(2) is not None:
            href = m.group(3)
            # Only in-page anchors and web links; repository paths have no page here.
            ok = href.startswith(("#", "http://", "https://", "/"))
            out.append(Segment(m.group(2), "link" if ok else "", href if ok else ""))
        else:
            out.append(Segment(m.group(4), "strong"))
        pos = m.end()
    if pos < len(text):
        out.append(Segment(text[pos:]))
    return out


def markdown_blocks(text: str) -> list[Block]:
    """Split Markdown into blocks the ``readme.html`` template renders."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        if stripped.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            blocks.append(Block("pre", code="\n".join(lines[i + 1 : j])))
            i = j + 1
            continue
        heading = re.match(r"^(#{1,3})\s+(.*)$", stripped)
        if heading:
            title = heading.group(2).strip()
            level = len(heading.group(1))
            blocks.append(Block(f"h{level}", [_inline(title)], id=slug(title)))
            i += 1
            continue
        if stripped.startswith("|"):
            rows: list[list[list[Segment]]] = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                    rows.append([_inline(c) for c in cells])
                i += 1
            blocks.append(Block("table", rows=rows))
            continue
        if re.match(r"^[-*]\s+", stripped):
            items: list[list[Segment]] = []
            while i < len(lines) and lines[i].strip():
                item = lines[i].strip()
                if re.match(r"^[-*]\s+", item):
                    items.append(_inline(re.sub(r"^[-*]\s+", "", item)))
                elif items:
                    items[-1] = [*items[-1], Segment(" "), *_inline(item)]
                i += 1
            blocks.append(Block("ul", items))
            continue
        para: list[str] = []
        while (
            i < len(lines)
            and lines[i].strip()
            and not lines[i].strip().startswith(("#", "```", "|"))
        ):
            para.append(lines[i].strip())
            i += 1
        blocks.append(Block("p", [_inline(" ".join(para))]))
    return blocks
