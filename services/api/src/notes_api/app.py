"""The notes API: a small REST resource server behind the MCP server.

    GET    /notes        notes:read    the caller's notes
    POST   /notes        notes:write   {"text": "..."} -> 201, the new note
    DELETE /notes/{id}   notes:write   the caller's note `id` (404 if it is not theirs)

Every answer names what the API saw of the token (`caller`, bearer.Caller: non-secret claims),
and every request is one access-log line with the same claims. Health (/livez, /readyz) is the
MCP server's (mcp_server.health: ready once the authorization server's signing keys are held), and
RFC 9728 metadata says which authorization server and scopes this API uses.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_server import health
from mcp_server.verifier import AccessTokenVerifier, verifier_for

from .bearer import Caller, Guard, Refusal
from .config import READ, WRITE, Settings
from .postgres import PostgresNoteStore
from .store import NoteStore, SQLiteNoteStore, StoreUnavailable, TooManyNotes

log = logging.getLogger("notes_api.access")

Handler = Callable[[Request, Caller], Awaitable[Response]]


def http_client(settings: Settings) -> httpx2.AsyncClient:
    verify: ssl.SSLContext | bool = True
    if settings.ca_bundle:
        verify = ssl.create_default_context(cafile=str(settings.ca_bundle))
    return httpx2.AsyncClient(verify=verify, timeout=10.0, follow_redirects=False)


def note_store(settings: Settings) -> NoteStore:
    """PostgreSQL when API_DATABASE_URL is set (TOPOLOGY=ha: shared by the replicas), else SQLite."""
    if settings.database_url:
        password = settings.database_password.get_secret_value() if settings.database_password else None
        return PostgresNoteStore(settings.database_url, password_file=settings.database_password_file,
                                 max_per_owner=settings.max_notes_per_user, user=settings.database_user,
                                 password=password)
    return SQLiteNoteStore(settings.database, max_per_owner=settings.max_notes_per_user)


def create_app(settings: Settings, *, http: httpx2.AsyncClient | None = None,
               verifier: AccessTokenVerifier | None = None, store: NoteStore | None = None) -> Starlette:
    own_http = http is None
    http = http or http_client(settings)
    checks = settings.verifier_settings
    if verifier is None:
        verifier = verifier_for(checks, http)
    keys = verifier.keys
    guard = Guard(verifier, audience=checks.expected_audience, metadata_url=settings.metadata_url)
    store = store or note_store(settings)

    def needs(scope: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                caller = await guard.caller(request, scope)
            except Refusal as refusal:
                _log(request, refusal.response.status_code, None, str(refusal))
                return refusal.response
            try:
                response = await handler(request, caller)
            except StoreUnavailable as exc:
                # The database is down or restarting: a 503 saying so, never a traceback.
                log.warning("note store unavailable: %s", exc)
                response = _json({"error": "temporarily_unavailable",
                                  "error_description": "the notes database is unavailable; try again shortly"}, 503)
            _log(request, response.status_code, caller, None)
            return response
        return endpoint

    async def list_notes(request: Request, caller: Caller) -> Response:
        notes = await store.notes(caller.subject)
        return _json({"notes": [n.as_json() for n in notes], "caller": caller.seen()})

    async def add_note(request: Request, caller: Caller) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _json({"error": "invalid_request", "error_description": "the body must be JSON"}, 400)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return _json({"error": "invalid_request", "error_description": "`text` must be a non-empty string"}, 400)
        if len(text) > settings.max_note_chars:
            return _json({"error": "invalid_request",
                          "error_description": f"a note has at most {settings.max_note_chars} characters"}, 400)
        try:
            note = await store.add(caller.subject, text)
        except TooManyNotes as exc:
            return _json({"error": "invalid_request", "error_description": str(exc)}, 409)
        return _json({"note": note.as_json(), "caller": caller.seen()}, 201)

    async def delete_note(request: Request, caller: Caller) -> Response:
        note_id = request.path_params["note_id"]
        if not await store.delete(caller.subject, note_id):
            # Not theirs or not there: the same answer, so ids of other users' notes are not probed.
            return _json({"error": "not_found", "error_description": f"you have no note {note_id}"}, 404)
        return _json({"deleted": note_id, "caller": caller.seen()})

    async def protected_resource_metadata(_: Request) -> Response:
        # RFC 9728 §2: who issues this API's tokens, and what they may carry.
        return _json({"resource": settings.url, "authorization_servers": [settings.issuer],
                      "scopes_supported": [READ, WRITE], "bearer_methods_supported": ["header"],
                      "resource_name": "Notes API (MCP auth sandbox)"})

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await store.open()
        try:
            async with keys.running():
                await keys.warm()
                yield
        finally:
            await store.close()
        if own_http:
            await http.aclose()

    return Starlette(
        routes=[
            Route("/notes", needs(READ, list_notes), methods=["GET"]),
            Route("/notes", needs(WRITE, add_note), methods=["POST"]),
            Route("/notes/{note_id:int}", needs(WRITE, delete_note), methods=["DELETE"]),
            Route("/.well-known/oauth-protected-resource", protected_resource_metadata, methods=["GET"]),
            *health.routes(keys, None),
        ],
        lifespan=lifespan,
    )


def _json(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})


def _log(request: Request, status: int, caller: Caller | None, reason: str | None) -> None:
    """One line per request: what was decided and the non-secret claims seen (never the token)."""
    log.info("%s %s %d", request.method, request.url.path, status,
             extra={"status": status, "reason": reason, **({"caller": caller.seen()} if caller else {})})
