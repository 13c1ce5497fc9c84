"""Sign-in links: reusable until they expire or the project's links are revoked, and only ever
a sign-in to their own project (docs/dashboard.md, "Sign-in links")."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from tests.conftest import Tenant
from tests.dashboard.conftest import OTHER_PLAYER, Dash

from sessionscope.config import Settings
from sessionscope.dashboard import auth
from sessionscope.dashboard.auth import COOKIE, LINK_MAX_AGE_S, sign_in_link
from sessionscope.management import StoreManagement
from sessionscope.store.clickhouse import ClickHouseStore


@pytest.fixture
def browser(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


def _opened(browser: httpx.Client, link: str) -> httpx.Response:
    return browser.get(link.split("/login", 1)[1].join(["/login", ""]))


def _link_issued(settings: Settings, project_id: int, age_s: int) -> str:
    """A link of ``project_id`` made ``age_s`` seconds ago (as ``sign_in_link`` makes them)."""

    class Issued(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_s

    serializer = URLSafeTimedSerializer(settings.secret_key, salt=auth._LINK_SALT, signer=Issued)
    return f"{settings.base_url}/login?token={serializer.dumps({'p': project_id})}"


def test_a_link_works_again_until_it_expires(base_url: str, settings: Settings, dash: Dash) -> None:
    link = sign_in_link(settings, dash.main.id)
    for _ in range(2):  # two browsers, or one twice after signing out
        with httpx.Client(base_url=base_url, timeout=30) as browser:
            opened = _opened(browser, link)
            assert opened.status_code == 303 and COOKIE in browser.cookies, opened.text
            assert dash.main.name in browser.get("/").text
            assert browser.post("/logout").status_code == 303
            assert _opened(browser, link).status_code == 303  # again, after signing out
            assert browser.get("/").status_code == 200
    nearly = _link_issued(settings, dash.main.id, LINK_MAX_AGE_S - 60)
    with httpx.Client(base_url=base_url, timeout=30) as browser:
        assert _opened(browser, nearly).status_code == 303


def test_an_expired_link_is_refused(browser: httpx.Client, settings: Settings, dash: Dash) -> None:
    expired = _link_issued(settings, dash.main.id, LINK_MAX_AGE_S + 60)
    refused = _opened(browser, expired)
    assert refused.status_code == 400 and "not valid or has expired" in refused.text
    assert COOKIE not in browser.cookies
    assert browser.get("/").status_code == 303


def test_revoke_links_refuses_every_earlier_link_and_its_sign_ins(
    base_url: str, settings: Settings, store: ClickHouseStore, tenant: Tenant
) -> None:
    old = sign_in_link(settings, tenant.project.id)
    with httpx.Client(base_url=base_url, timeout=30) as used:
        assert _opened(used, old).status_code == 303
        assert used.get("/").status_code == 200
        # What `sessionscope projects revoke-links NAME` does when no server manages the store.
        out = StoreManagement(store).revoke_links(tenant.project.name)
        assert out["signin_generation"] == 1
        assert used.get("/").status_code == 303  # the sign-in made with the link is over
    new = sign_in_link(settings, tenant.project.id, 1)
    with httpx.Client(base_url=base_url, timeout=30) as browser:
        refused = _opened(browser, old)
        assert refused.status_code == 400 and "not valid" in refused.text
        assert _opened(browser, new).status_code == 303
        assert _opened(browser, new).status_code == 303  # the new one is reusable in turn
        assert browser.get("/").status_code == 200
        assert _opened(browser, old).status_code == 400  # and the old one stays refused
        StoreManagement(store).revoke_links(tenant.project.name)
        assert _opened(browser, new).status_code == 400


def test_a_link_of_one_project_never_signs_in_to_another(
    browser: httpx.Client, settings: Settings, dash: Dash
) -> None:
    link = sign_in_link(settings, dash.main.id)
    # Sent on to the other project's permalink: a 404, not a switch.
    target = f"/projects/{dash.other.id}/sessions/player/{OTHER_PLAYER}"
    opened = _opened(browser, link + "&next=" + target)
    assert opened.status_code == 303 and opened.headers["location"] == target
    page = browser.get(target)
    assert page.status_code == 404 and dash.other.name not in page.text
    overview = browser.get("/").text
    assert dash.main.name in overview and dash.other.name not in overview
    assert OTHER_PLAYER not in browser.get("/sessions", params={"kind": "player"}).text
    # Its token says which project: one naming the other project needs the server's key.
    browser.cookies.clear()
    forged = URLSafeTimedSerializer("not-the-secret", salt=auth._LINK_SALT).dumps(
        {"p": dash.other.id}
    )
    refused = browser.get("/login", params={"token": forged})
    assert refused.status_code == 400 and COOKIE not in browser.cookies
