"""A JSON response rendered by orjson (datetimes, large lists)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

__all__ = ["JSON"]


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
