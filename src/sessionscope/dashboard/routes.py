"""The dashboard's pages: overview, session explorer, session page, sign-in.

Routes only translate: they read the sign-in cookie and the query, call the core through the
page builders (``overview``, ``explorer``, ``session``) and render a Jinja2 template. Pages are
rendered on the server; ``static/dashboard.js`` draws the charts with Chart.js, shipped in
``static/`` (no CDN, no build step).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from sessionscope import __version__
from sessionscope.api.attempts import client_address
from sessionscope.api.context import AppContext, get_ctx
from sessionscope.api.errors import ApiError, native_error, register_error_shape
from sessionscope.api.limits import read_body
from sessionscope.dashboard import format as fmt
from sessionscope.dashboard.auth import (
    COOKIE,
    COOKIE_MAX_AGE_S,
    KeyCannotRead,
    SignIn,
    Viewer,
    decode_cookie,
    decode_link,
    encode_cookie,
    resolve,
    sign_in_with_key,
    sign_in_with_user,
)
from sessionscope.dashboard.explorer import (
    EmptyState,
    ExplorerQuery,
    empty_state,
    list_page,
    parse_query,
    session_table,
)
from sessionscope.dashboard.kinds import KIND_TITLES, example_curl
from sessionscope.dashboard.overview import build_overview
from sessionscope.dashboard.readme import markdown_blocks
from sessionscope.dashboard.session import build_session_page
from sessionscope.dashboard.window import RANGES, Window, form_value, parse_window, session_url
from sessionscope.domain.events import KINDS
from sessionscope.domain.timerange import TimeRangeError
from sessionscope.service import AnySession, CursorError

__all__ = ["PREFIXES", "install", "router"]

log = logging.getLogger("sessionscope.dashboard")

router = APIRouter(include_in_schema=False)

#: Path prefixes whose errors are dashboard pages; ``/`` itself (the overview) is one too.
PREFIXES = (
    "/sessions",
    "/projects",
    "/login",
    "/logout",
    "/switch-project",
    "/static",
    "/readme",
)

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def install(app: FastAPI) -> None:
    """Serve the dashboard at ``/`` and its static files at ``/static``."""
    app.include_router(router)
    app.mount(
        "/static",
        StaticFiles(packages=[("sessionscope.dashboard", "static")]),
        name="dashboard-static",
    )
    for prefix in PREFIXES:
        register_error_shape(prefix, html_error)
    # The shortest prefix of all: every other family keeps its own shape, and paths that no
    # family claims keep the native one; only the overview's own path gets an HTML page.
    register_error_shape("/", _overview_or_native_error)


# ------------------------------------------------------------------------------- rendering


@functools.cache
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("sessionscope.dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(version=__version__, kinds=KINDS, kind_titles=KIND_TITLES)
    env.filters.update(duration=fmt.duration, millis=fmt.millis, time=fmt.time, integer=fmt.integer)
    return env


def _headers(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {
        "Content-Security-Policy": _CSP,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
        **(extra or {}),
    }


def render(
    template: str, status_code: int = 200, headers: Mapping[str, str] | None = None, **values: Any
) -> HTMLResponse:
    """Render a template to an HTML response with the dashboard's security headers."""
    values.setdefault("viewer", None)
    values.setdefault("nav", "")
    html = _env().get_template(template).render(**values)
    return HTMLResponse(html, status_code=status_code, headers=_headers(headers))


def html_error(err: ApiError, request: Request) -> Response:
    """The dashboard's error shape: a small HTML page with the status and message."""
    titles = {
        400: "Bad request",
        401: "Not signed in",
        403: "Forbidden",
        404: "Not found",
        429: "Too many attempts",
    }
    title = titles.get(err.status, "Server error" if err.status >= 500 else "Error")
    return render(
        "error.html", err.status, err.headers, title=title, status=err.status, message=err.message
    )


def _overview_or_native_error(err: ApiError, request: Request) -> Response:
    if request.url.path == "/":
        return html_error(err, request)
    return native_error(err, request)


# ------------------------------------------------------------------------------- sign-in


def _viewer(ctx: AppContext, request: Request) -> Viewer | None:
    return resolve(ctx, decode_cookie(ctx.settings, request.cookies.get(COOKIE)))


def _to_login(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/login" if here == "/" else "/login?" + urlencode({"next": here})
    return RedirectResponse(target, status_code=303, headers=_headers())


def _safe_next(value: str | None) -> str:
    """Only same-site paths: ``/...`` but not ``//host`` or ``/\\host``."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


def _signed_in(ctx: AppContext, request: Request, sign_in: SignIn, target: str) -> Response:
    response = RedirectResponse(_safe_next(target), status_code=303, headers=_headers())
    secure = request.url.scheme == "https" or ctx.settings.public_url.startswith("https://")
    response.set_cookie(
        COOKIE,
        encode_cookie(ctx.settings, sign_in),
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
    return response


def _same_origin(ctx: AppContext, request: Request) -> bool:
    """Refuse form posts made by other sites (the cookie is SameSite=Lax as well).

    The ``Origin`` a browser sends must name this server: the ``Host`` it was reached at, or
    the host of ``settings.public_url`` (behind a proxy that rewrites ``Host``).
    """
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    hosts = {request.headers.get("host", ""), urlsplit(ctx.settings.public_url).netloc} - {""}
    return urlsplit(origin).netloc in hosts


async def _form(request: Request) -> dict[str, str]:
    try:
        body = await read_body(request, 16_384)  # refused unread past the bound
    except ApiError:
        raise ApiError(413, "too_large", "form is too large") from None
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _too_many_attempts(wait_s: int, next: str | None, email: str = "") -> Response:
    error = f"Too many sign-ins were refused from your address: try again in {wait_s} seconds."
    return render(
        "login.html",
        429,
        {"Retry-After": str(wait_s)},
        next=_safe_next(next),
        error=error,
        email=email,
    )


@router.get("/login")
async def login_page(
    request: Request,
    next: str | None = None,
    token: str | None = None,
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    """The sign-in form; ``?token=`` signs in with a link made by ``sessionscope demo``.

    A link works as often as it is opened, until it expires or the project's links are
    revoked (``projects revoke-links``); a link that does not work counts as a refused
    credential of the client's address (``api.attempts``)."""
    if token:
        address, credential = client_address(request.scope), hash(("link", token))
        wait = ctx.attempts.wait_s(address, credential)
        if wait:
            return _too_many_attempts(wait, next)
        link = decode_link(ctx.settings, token)
        project = await run_in_threadpool(ctx.store.get_project, link[0]) if link else None
        if project is None or link is None or link[1] != project.signin_generation:
            ctx.attempts.refused(address, credential)
            log.warning("refused a dashboard sign-in link from %s", address)
            return render(
                "login.html",
                400,
                next=_safe_next(next),
                error="This sign-in link is not valid or has expired: sign in with a key.",
                email="",
            )
        ctx.attempts.accepted(address, credential)
        ref = str(link[1]) if link[1] else ""
        return _signed_in(ctx, request, SignIn(project.id, "link", ref), next or "/")
    viewer = await run_in_threadpool(_viewer, ctx, request)
    return render("login.html", next=_safe_next(next), error="", email="", viewer=viewer)


@router.post("/login")
async def login(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    """Sign in with a project API key, or with a user's email and token."""
    if not _same_origin(ctx, request):
        raise ApiError(403, "forbidden", "sign-in forms are accepted from this site only")
    form = await _form(request)
    target = _safe_next(form.get("next"))
    api_key = form.get("api_key", "").strip()
    email = form.get("email", "").strip()
    token = form.get("token", "").strip()
    address, credential = client_address(request.scope), hash(("form", api_key, email, token))
    wait = ctx.attempts.wait_s(address, credential) if api_key or token else 0
    if wait:
        return _too_many_attempts(wait, target, email)
    sign_in: SignIn | None = None
    if api_key:
        try:
            sign_in = await run_in_threadpool(sign_in_with_key, ctx, api_key)
        except KeyCannotRead as exc:
            error = (
                f"That API key has scope '{exc.scope}': it can only send events. "
                "Sign in with a read or full key."
            )
            return render("login.html", 403, next=target, error=error, email=email)
        error = "That API key is not valid."
    elif email and token:
        sign_in = await run_in_threadpool(sign_in_with_user, ctx, email, token)
        error = "That email and token do not match a user."
    else:
        error = "Enter a project API key, or an email and a token."
    if sign_in is None:  # a 401: counted against the address by ``api.attempts``
        return render("login.html", 401, next=target, error=error, email=email)
    ctx.attempts.accepted(address, credential)
    log.info("dashboard sign-in to project %s via %s", sign_in.project_id, sign_in.via)
    return _signed_in(ctx, request, sign_in, target)


@router.api_route("/logout", methods=["GET", "POST"])
def logout(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    """Forget the sign-in."""
    if request.method == "POST" and not _same_origin(ctx, request):
        raise ApiError(403, "forbidden", "forms are accepted from this site only")
    response = RedirectResponse("/login", status_code=303, headers=_headers())
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.post("/switch-project")
async def switch_project(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    """Switch a user's sign-in to another of their projects."""
    if not _same_origin(ctx, request):
        raise ApiError(403, "forbidden", "forms are accepted from this site only")
    viewer = await run_in_threadpool(_viewer, ctx, request)
    if viewer is None:
        return _to_login(request)
    form = await _form(request)
    wanted = form.get("project_id", "")
    project = next((p for p in viewer.projects if str(p.id) == wanted), None)
    if project is None:
        raise ApiError(400, "bad_request", "parameter project_id: not one of your projects")
    current = viewer.sign_in
    return _signed_in(ctx, request, SignIn(project.id, current.via, current.ref), "/")


# ------------------------------------------------------------------------------- pages


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/")
def overview(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    """Overview of the signed-in project over a time window, one section per kind."""
    viewer = _viewer(ctx, request)
    if viewer is None:
        return _to_login(request)
    now = _now()
    params = request.query_params
    try:
        window = parse_window(params.get("range"), params.get("from"), params.get("to"), now)
    except TimeRangeError as exc:
        default = parse_window(None, None, None, now)
        error = f"{exc.param}: {exc.message}"
        return _overview_page(ctx, request, viewer, default, now, 400, error)
    return _overview_page(ctx, request, viewer, window, now, 200, "")


def _overview_page(
    ctx: AppContext,
    request: Request,
    viewer: Viewer,
    window: Window,
    now: datetime,
    status: int,
    error: str,
) -> Response:
    data = build_overview(ctx.service, viewer.project, window, now)
    base_url = _base_url(ctx, request)
    params = request.query_params
    return render(
        "overview.html",
        status,
        viewer=viewer,
        nav="overview",
        overview=data,
        ranges=RANGES,
        error=error,
        # After an error, the form keeps what was typed, to be corrected.
        custom_from=params.get("from", "") if error else form_value(window.start),
        custom_to=params.get("to", "") if error else form_value(window.asked or window.until),
        base_url=base_url,
        example=example_curl("player", now, base_url),
    )


def _base_url(ctx: AppContext, request: Request) -> str:
    return ctx.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")


@router.get("/sessions")
def sessions(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    """The session explorer: a kind's sessions, newest first, filtered and paged."""
    viewer = _viewer(ctx, request)
    if viewer is None:
        return _to_login(request)
    now = _now()
    try:
        q = parse_query(request.query_params.multi_items())
        page = list_page(ctx.service, viewer.project, q)
    except TimeRangeError as exc:
        message = f"parameter {exc.param}: {exc.message}"
    except CursorError as exc:
        message = f"parameter cursor: {exc}"
    else:
        empty = None
        if not page.sessions and q.unfiltered:
            has_events = q.kind in ctx.service.event_kinds(viewer.project)
            empty = empty_state(q.kind, has_events, now, _base_url(ctx, request))
        return _explorer_page(viewer, q, 200, "", empty, page.sessions, page.next, now)
    kind = request.query_params.get("kind", "player")
    q = parse_query([("kind", kind if kind in KINDS else "player")])
    return _explorer_page(viewer, q, 400, message, None, None, None, now)


def _explorer_page(
    viewer: Viewer,
    q: ExplorerQuery,
    status: int,
    error: str,
    empty: EmptyState | None,
    found: Sequence[AnySession] | None,
    next_cursor: str | None,
    now: datetime,
) -> Response:
    return render(
        "sessions.html",
        status,
        viewer=viewer,
        nav="sessions",
        query=q,
        table=session_table(q.kind, found, now) if found is not None and empty is None else None,
        empty=empty,
        next_url=q.url(next_cursor) if next_cursor else "",
        first_url=q.url() if q.cursor else "",
        error=error,
    )


@router.get("/sessions/{kind}/{key:path}")
def session_page(
    request: Request, kind: str, key: str, ctx: AppContext = Depends(get_ctx)
) -> Response:
    """One session: its metrics and a timeline of its events."""
    viewer = _viewer(ctx, request)
    if viewer is None:
        return _to_login(request)
    found = ctx.service.get_session(viewer.project, kind, key) if kind in KINDS else None
    if found is None:
        raise ApiError(
            404, "not_found", f"No {kind} session {key!r} in project {viewer.project.name}."
        )
    session, events = found
    page = build_session_page(viewer.project, kind, session, events, _now())
    return render("session.html", viewer=viewer, nav="sessions", page=page)


@router.get("/projects/{project_id}/sessions/{kind}/{key:path}")
def project_session_page(
    request: Request, project_id: str, kind: str, key: str, ctx: AppContext = Depends(get_ctx)
) -> Response:
    """A session of a named project (the ThousandEyes ``permalink``): switch the sign-in to
    that project when it is one of the viewer's, then show the session's page.

    Not one of the viewer's projects, or no such session there: 404, and the sign-in stays.
    """
    viewer = _viewer(ctx, request)
    if viewer is None:
        return _to_login(request)
    project = next((p for p in viewer.projects if str(p.id) == project_id), None)
    found = None
    if project is not None and kind in KINDS:
        found = ctx.service.get_session(project, kind, key)
    if project is None or found is None:
        raise ApiError(404, "not_found", f"No {kind} session {key!r} in your projects.")
    target = session_url(kind, key)
    if project.id == viewer.project.id:
        return RedirectResponse(target, status_code=303, headers=_headers())
    current = viewer.sign_in
    log.info("dashboard switch to project %s for a permalink", project.id)
    return _signed_in(ctx, request, SignIn(project.id, current.via, current.ref), target)


# ------------------------------------------------------------------------------- readme


@functools.cache
def _readme_text() -> str | None:
    source = Path(__file__).resolve().parents[3] / "README.md"
    if source.is_file():
        return source.read_text(encoding="utf-8")
    try:
        body = metadata("sessionscope").json.get("description")
    except PackageNotFoundError:
        return None
    return body if isinstance(body, str) and body.strip() else None


@router.get("/readme")
def readme(request: Request, ctx: AppContext = Depends(get_ctx)) -> Response:
    """The project's README, so the empty states can link to it without a network."""
    text = _readme_text()
    if text is None:
        raise ApiError(404, "not_found", "The README is not installed with this server.")
    return render(
        "readme.html", viewer=_viewer(ctx, request), nav="readme", blocks=markdown_blocks(text)
    )
