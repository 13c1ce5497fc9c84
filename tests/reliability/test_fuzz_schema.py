"""Every route of the OpenAPI schema fuzzed with schemathesis, with valid credentials of its
family (so the parsers behind authentication are reached): never a 5xx, every 4xx in the
family's error shape. ``SESSIONSCOPE_FUZZ_EXAMPLES`` examples per route (``make fuzz``: more).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core import NotSet

from sessionscope.app import create_app
from sessionscope.config import Settings
from tests.reliability.conftest import EXAMPLES, Creds
from tests.reliability.shapes import check_answer

_SCHEMA = schemathesis.openapi.from_dict(
    create_app(Settings(data_dir="unused", secret_key="unused")).openapi()
)
_OPERATIONS = {
    f"{op.method.upper()} {op.path}": op for op in (r.ok() for r in _SCHEMA.get_all_operations())
}


def _target(case: Any) -> str:
    query: dict[str, Any] = case.query if isinstance(case.query, dict) else {}
    pairs = [(k, v) for k, vs in query.items() for v in (vs if isinstance(vs, list) else [vs])]
    encoded = urlencode([(k, "" if v is None else str(v)) for k, v in pairs])
    return case.formatted_path + (f"?{encoded}" if encoded else "")


@pytest.mark.parametrize("name", sorted(_OPERATIONS))
def test_route_fuzzed_from_the_schema(name: str, creds: Creds, http: httpx.Client) -> None:
    operation = _OPERATIONS[name]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        target = _target(case)
        headers = {
            str(k): str(v)
            for k, v in (case.headers or {}).items()
            if str(v).isascii() and "\n" not in str(v) and "\r" not in str(v)
        }
        headers.update(creds.for_path(case.method.upper(), target))
        body = None if isinstance(case.body, NotSet) else case.body
        kwargs: dict[str, Any] = {"json": body} if body is not None else {}
        response = http.request(case.method.upper(), target, headers=headers, **kwargs)
        check_answer(response)

    fuzz()
