"""The notes API as a resource server: the MCP server's verifier with the API's audience, a token
for the MCP server refused (no passthrough), RFC 6750 challenges, per-route scopes, and notes kept
per `sub`. Tokens are minted by the fake authorization server; the API runs in process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest

from mcp_server.jwks import JWKSCache
from mcp_server.verifier import AccessTokenVerifier
from notes_api.app import create_app
from notes_api.config import Settings
from notes_api.store import StoreUnavailable
from tests.support.authorization_server import ISSUER, JWKS_URL, FakeAuthorizationServer, claims_for, mint

API = "https://api.test"
MCP = "https://mcp.test/mcp"
METADATA = f"{API}/.well-known/oauth-protected-resource"


def settings(tmp_path: Path, **overrides) -> Settings:
    return Settings(**{"issuer": ISSUER, "url": API, "jwks_url": JWKS_URL, "database": tmp_path / "notes.sqlite3",
                       **overrides})


@asynccontextmanager
async def api(tmp_path: Path, fake: FakeAuthorizationServer | None = None, **overrides) -> AsyncIterator[
        tuple[httpx2.AsyncClient, FakeAuthorizationServer]]:
    fake = fake or FakeAuthorizationServer()
    app = create_app(settings(tmp_path, **overrides), http=fake.http())
    async with app.router.lifespan_context(app), httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                                                    base_url=API) as client:
        yield client, fake


def token(fake: FakeAuthorizationServer, **claims) -> dict[str, str]:
    base = {"aud": API, "azp": MCP, "scope": "notes:read notes:write"}
    return {"authorization": f"Bearer {mint(fake.key, claims_for(API, **{**base, **claims}))}"}


def challenge(response: httpx2.Response) -> str:
    return response.headers["www-authenticate"]


# --- the verifier is the MCP server's, aimed at this API ---------------------------------------


def test_the_api_uses_the_mcp_servers_verifier_settings_with_its_own_audience(tmp_path: Path):
    checks = settings(tmp_path, leeway_seconds=7, algorithms=["RS256", "ES256"]).verifier_settings
    assert checks.expected_audience == API
    assert checks.issuer == ISSUER
    assert (checks.leeway_seconds, checks.algorithms, checks.scope_claim) == (7, ["RS256", "ES256"], "scope")
    assert checks.audience_scope == ""  # no MCP audience scope advertised or implied


def test_the_api_refuses_to_accept_symmetric_algorithms_like_the_mcp_server(tmp_path: Path):
    fake = FakeAuthorizationServer()
    checks = settings(tmp_path, algorithms=["HS256"]).verifier_settings
    keys = JWKSCache(fake.http(), issuer=ISSUER, jwks_url=JWKS_URL, algorithms=checks.algorithms, min_refresh=30, max_age=300)
    with pytest.raises(ValueError, match="HS256"):
        AccessTokenVerifier(checks, keys)


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_no_token_is_a_401_challenge_without_an_error_code(tmp_path: Path):
    async with api(tmp_path) as (client, _):
        response = await client.get("/notes")
    assert response.status_code == 401
    assert challenge(response) == f'Bearer scope="notes:read", resource_metadata="{METADATA}"'  # RFC 6750 §3.1


@pytest.mark.anyio
async def test_a_token_for_the_mcp_server_is_refused(tmp_path: Path):
    """Passthrough cannot work: the token an MCP client sent to the MCP server is not for this API."""
    async with api(tmp_path) as (client, fake):
        response = await client.get("/notes", headers=token(fake, aud=MCP, azp="some-agent", scope="mcp:tools"))
    assert response.status_code == 401
    assert 'error="invalid_token"' in challenge(response)
    assert "audience is not this resource server" in response.json()["error_description"]


@pytest.mark.anyio
async def test_a_token_naming_the_api_and_the_mcp_server_is_refused(tmp_path: Path):
    """A token valid at the MCP server too could have been passed on: only the API's alone is accepted."""
    async with api(tmp_path) as (client, fake):
        response = await client.get("/notes", headers=token(fake, aud=[MCP, API]))
    assert response.status_code == 401
    assert 'error="invalid_token"' in challenge(response)
    assert MCP in response.json()["error_description"]


@pytest.mark.anyio
async def test_an_expired_or_forged_token_is_refused_by_the_shared_verifier(tmp_path: Path):
    async with api(tmp_path) as (client, fake):
        expired = await client.get("/notes", headers=token(fake, exp=1_000_000))
        other = FakeAuthorizationServer()  # signed by a key the AS does not publish
        forged = await client.get("/notes", headers={"authorization": "Bearer " + mint(other.key, claims_for(API))})
    assert expired.status_code == forged.status_code == 401
    assert "expired" in expired.json()["error_description"]
    assert "signature" in forged.json()["error_description"]


@pytest.mark.anyio
async def test_writing_with_a_read_only_token_is_a_403_naming_the_scope(tmp_path: Path):
    async with api(tmp_path) as (client, fake):
        response = await client.post("/notes", json={"text": "x"}, headers=token(fake, scope="notes:read"))
    assert response.status_code == 403
    assert challenge(response).startswith('Bearer error="insufficient_scope"')
    assert 'scope="notes:write"' in challenge(response)


@pytest.mark.anyio
async def test_two_authorization_headers_are_a_400(tmp_path: Path):
    async with api(tmp_path) as (client, fake):
        auth = token(fake)["authorization"]
        response = await client.get("/notes", headers=[("authorization", auth), ("authorization", auth)])
    assert response.status_code == 400
    assert 'error="invalid_request"' in challenge(response)


# --- notes per user -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_notes_are_kept_per_subject_and_the_answer_shows_what_the_api_saw(tmp_path: Path):
    async with api(tmp_path) as (client, fake):
        alice, bob = token(fake, sub="alice-sub"), token(fake, sub="bob-sub")
        added = await client.post("/notes", json={"text": "buy milk"}, headers=alice)
        assert added.status_code == 201, added.text
        note_id = added.json()["note"]["id"]
        assert (await client.get("/notes", headers=bob)).json()["notes"] == []
        # Bob cannot delete Alice's note, and learns nothing about it (the same 404 as a missing id).
        assert (await client.delete(f"/notes/{note_id}", headers=bob)).status_code == 404
        listed = await client.get("/notes", headers=alice)
        assert [n["text"] for n in listed.json()["notes"]] == ["buy milk"]
        seen = listed.json()["caller"]
        assert (seen["sub"], seen["aud"], seen["azp"]) == ("alice-sub", [API], MCP)
        assert seen["scope"] == ["notes:read", "notes:write"]
        assert "token" not in str(seen).lower()
        assert (await client.delete(f"/notes/{note_id}", headers=alice)).json()["deleted"] == note_id
        assert (await client.get("/notes", headers=alice)).json()["notes"] == []


@pytest.mark.anyio
async def test_notes_survive_a_restart_of_the_api(tmp_path: Path):
    fake = FakeAuthorizationServer()
    async with api(tmp_path, fake) as (client, _):
        assert (await client.post("/notes", json={"text": "kept"}, headers=token(fake))).status_code == 201
    async with api(tmp_path, fake) as (client, _):
        assert [n["text"] for n in (await client.get("/notes", headers=token(fake))).json()["notes"]] == ["kept"]


@pytest.mark.anyio
async def test_bad_bodies_and_limits_are_refused_with_one_clear_line(tmp_path: Path):
    async with api(tmp_path, max_notes_per_user=1, max_note_chars=5) as (client, fake):
        headers = token(fake)
        assert (await client.post("/notes", content=b"{", headers=headers)).status_code == 400
        assert (await client.post("/notes", json={"text": "  "}, headers=headers)).status_code == 400
        assert (await client.post("/notes", json={"text": "toolong"}, headers=headers)).status_code == 400
        assert (await client.post("/notes", json={"text": "ok"}, headers=headers)).status_code == 201
        full = await client.post("/notes", json={"text": "more"}, headers=headers)
    assert full.status_code == 409
    assert full.json()["error_description"] == "at most 1 notes per user"


@pytest.mark.anyio
async def test_the_access_log_names_the_claims_seen_and_never_the_token(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="notes_api.access")
    async with api(tmp_path) as (client, fake):
        headers = token(fake, sub="logged-sub")
        await client.get("/notes", headers=headers)
        await client.get("/notes", headers=token(fake, aud=MCP))
    raw = headers["authorization"].removeprefix("Bearer ")
    records = [r for r in caplog.records if r.name == "notes_api.access"]
    assert [r.status for r in records] == [200, 401]  # type: ignore[attr-defined]
    assert records[0].caller["sub"] == "logged-sub"  # type: ignore[attr-defined]
    assert "audience" in records[1].reason  # type: ignore[attr-defined]
    assert all(raw not in str(vars(r)) and raw[-20:] not in r.getMessage() for r in records)


@pytest.mark.anyio
async def test_health_and_metadata_need_no_token(tmp_path: Path):
    async with api(tmp_path) as (client, _):
        assert (await client.get("/readyz")).json() == {"status": "ok", "signing_keys": 1}
        prm = (await client.get("/.well-known/oauth-protected-resource")).json()
    assert prm["resource"] == API
    assert prm["authorization_servers"] == [ISSUER]
    assert prm["scopes_supported"] == ["notes:read", "notes:write"]


class DownStore:
    """A note store whose database is down (as PostgresNoteStore reports it)."""

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def notes(self, owner: str) -> list:
        raise StoreUnavailable("PostgreSQL: connection refused")

    add = delete = notes


@pytest.mark.anyio
async def test_a_database_outage_is_a_503_with_one_line_not_a_traceback(tmp_path: Path):
    fake = FakeAuthorizationServer()
    app = create_app(settings(tmp_path), http=fake.http(), store=DownStore())  # type: ignore[arg-type]
    async with app.router.lifespan_context(app), httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                                                    base_url=API) as client:
        response = await client.get("/notes", headers=token(fake))
    assert response.status_code == 503
    assert response.json() == {"error": "temporarily_unavailable",
                               "error_description": "the notes database is unavailable; try again shortly"}
