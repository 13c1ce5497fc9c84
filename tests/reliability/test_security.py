"""Credential abuse and security headers: NAVER signature v2 replayed late or altered, keys
of one project naming another, secrets compared in constant time, refused credentials
logged, dashboard forms refused from other sites, security headers on every answer."""

from __future__ import annotations

import ast
import logging
import time
from pathlib import Path

import httpx
import pytest

from sessionscope.ingest import Ingestor
from sessionscope.store.clickhouse import ClickHouseStore
from tests.reliability.conftest import Creds, make_creds
from tests.reliability.shapes import check_answer

SRC = Path(__file__).resolve().parents[2] / "src" / "sessionscope"


@pytest.fixture(scope="module")
def pair(store: ClickHouseStore, ingestor: Ingestor) -> tuple[Creds, Creds]:
    return make_creds(store, ingestor, "secA"), make_creds(store, ingestor, "secB")


def _refused(response: httpx.Response) -> None:
    check_answer(response, "credentials")
    assert response.status_code == 401, response.text


def test_naver_signature_abuse(http: httpx.Client, pair: tuple[Creds, Creds]) -> None:
    a, b = pair
    target = "/api/v2/events?pageNo=1&pageSize=5"
    now = time.time_ns() // 1_000_000
    ok = http.get(target, headers=a.livestation("GET", target))
    assert ok.status_code == 200, ok.text
    # Replayed outside the 5-minute window (either way), however valid the signature.
    for skew in (-301_000, 301_000, -86_400_000):
        _refused(http.get(target, headers=a.livestation("GET", target, timestamp=str(now + skew))))
    # A signature of another method, path, or query (order) is no signature of this request.
    signed = a.livestation("GET", "/api/v2/events?pageSize=5&pageNo=1")
    _refused(http.get(target, headers=signed))
    _refused(http.get(target, headers=a.livestation("POST", target)))
    _refused(http.get(target, headers=a.livestation("GET", "/api/v2/events")))
    other = "/api/v2/channels/ls-x/events"
    _refused(http.get(other, headers=a.livestation("GET", target)))
    _refused(http.post("/api/v2/callbacks/events", json=[], headers=a.livestation("GET", target)))
    # Each header missing.
    for header in ("x-ncp-apigw-timestamp", "x-ncp-iam-access-key", "x-ncp-apigw-signature-v2"):
        headers = a.livestation("GET", target)
        del headers[header]
        _refused(http.get(target, headers=headers))
    # B's access key with A's secret; A's access key with B's secret.
    for access, secret in ((b.access_key, a.secret_key), (a.access_key, b.secret_key)):
        forged = Creds(0, "", access, secret, "", "")
        _refused(http.get(target, headers=forged.livestation("GET", target)))


def test_keys_naming_another_project_are_refused(
    http: httpx.Client, pair: tuple[Creds, Creds]
) -> None:
    a, b = pair
    for project in (str(b.project_id), "0", "-1", "999999999", "1 OR 1=1"):
        response = http.get(
            "/v1/sessionRecent", headers={"x-api-key": a.api_key, "x-project-id": project}
        )
        check_answer(response, "credentials")
        assert response.status_code in (400, 401, 403), (project, response.text)
    response = http.get(
        f"/v6/endpoint-data/user-sessions?aid={b.project_id}", headers=a.thousandeyes()
    )
    check_answer(response, "credentials")
    assert response.status_code == 403
    for key in (a.api_key[:-1], a.api_key + "x", a.api_key.upper(), "ssk_" + "0" * 12 + "_x"):
        for headers in ({"Authorization": f"Bearer {key}"},):
            _refused(http.get("/api/v1/project", headers=headers))
        _refused(http.get("/ekranapi/sessions", headers={"ApiKey": key}))


def test_refused_credentials_are_logged_without_the_secret(
    http: httpx.Client, pair: tuple[Creds, Creds], caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = pair
    guess = a.api_key[:-3] + "zzz"
    with caplog.at_level(logging.WARNING, logger="sessionscope.api"):
        _refused(http.get("/api/v1/project", headers={"Authorization": f"Bearer {guess}"}))
        _refused(http.get("/ekranapi/sessions", headers={"ApiKey": guess}))
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused ")]
    assert len(refused) >= 2, caplog.text
    assert all(guess not in m and guess.split("_")[-1] not in m for m in refused)


_SECRET_WORDS = ("secret", "signature", "token", "password", "digest", "api_key", "hash")


def test_secrets_are_compared_in_constant_time() -> None:
    """No ``==``/``!=`` between a secret-like value and another: ``hmac.compare_digest``."""
    found = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                continue
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) for o in operands):
                continue  # against a literal: a kind, a scheme, an empty string
            names = [ast.unparse(o).lower() for o in operands]
            if any(n.endswith("id") for n in names):
                continue  # ids (a key's project id), not secrets
            if any(w in n for n in names for w in _SECRET_WORDS):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "compare secrets with hmac.compare_digest:\n" + "\n".join(found)


def test_dashboard_forms_are_refused_from_other_sites(
    base_url: str, pair: tuple[Creds, Creds]
) -> None:
    a, _ = pair
    with httpx.Client(base_url=base_url, timeout=30) as client:
        signed = client.post("/login", data={"api_key": a.api_key}, headers={"Origin": base_url})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        for path, data in (("/logout", {}), ("/switch-project", {"project_id": "1"})):
            for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
                refused = client.post(path, data=data, headers=headers)
                assert refused.status_code == 403, (path, headers, refused.status_code)
                assert refused.headers["content-type"].startswith("text/html")
        assert client.get("/", follow_redirects=False).status_code == 200  # still signed in
        # Secure behind https (public_url https): the cookie says so.


@pytest.mark.parametrize(
    "target",
    [
        "/healthz",
        "/api/v1/sessions?kind=player",
        "/api/v1/nope",
        "/v1/sessionRecent",
        "/api/v2/events",
        "/ekranapi/sessions",
        "/v6/endpoint-data/user-sessions",
        "/v6/endpoint-data/user-sessions.xml",
        "/openapi.json",
        "/docs",
        "/login",
        "/sessions",
    ],
)
def test_security_headers_on_every_answer(http: httpx.Client, target: str) -> None:
    response = http.get(target, follow_redirects=False)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    kind = response.headers.get("content-type", "")
    if "json" in kind or "xml" in kind:
        assert "default-src 'none'" in csp, csp
