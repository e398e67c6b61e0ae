"""logout revokes the refresh token (RFC 7009) authenticating as the client does at the token
endpoint, deletes the stored files whatever the outcome, and says so when revocation failed.

A small HTTP server on loopback plays the authorization server's revocation endpoint and records
what it receives (tests/integration/test_agent_flows.py proves it against Keycloak)."""

import json
import threading
from base64 import b64decode
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import anyio
import jwt
import pytest
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl

from mcp_agent import cli
from mcp_agent.config import AgentSettings
from mcp_agent.storage import FileTokenStorage
from tests.unit.agent.test_provider import write_private_jwk

SERVER = "https://mcp.test/mcp"
ISSUER = "https://as.test/realms/mcp"
CIMD = "https://cimd.test/agents/demo/metadata.json"


class RevocationEndpoint:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, str]]] = []
        self.answer: tuple[int, dict[str, str]] = (200, {})
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"])).decode()
                endpoint.requests.append((dict(parse_qsl(body)), {k.lower(): v for k, v in self.headers.items()}))
                status, payload = endpoint.answer
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/revoke"


@pytest.fixture
def endpoint() -> Iterator[RevocationEndpoint]:
    fake = RevocationEndpoint()
    thread = threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def stored(tmp_path: Path, client: OAuthClientInformationFull, revocation_endpoint: str | None,
           refresh_token: str | None = "the-refresh-token") -> FileTokenStorage:
    storage = FileTokenStorage(tmp_path / "state", SERVER)
    anyio.run(storage.set_tokens, OAuthToken(access_token="at", token_type="Bearer", refresh_token=refresh_token))
    anyio.run(storage.set_client_info, client)
    metadata = {"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/auth", "token_endpoint": f"{ISSUER}/token",
                "revocation_endpoint": revocation_endpoint}
    storage.set_session(oauth_metadata={k: v for k, v in metadata.items() if v})
    return storage


def settings(tmp_path: Path, **changes) -> AgentSettings:
    return AgentSettings(server_url=SERVER, state_dir=tmp_path / "state", callback_port=8976,
                         client_metadata_url=CIMD, **changes)


def logout(tmp_path: Path, **changes) -> tuple[int, dict]:
    """What `mcp-agent logout` does, and its exit status (1 whenever the answer has an error)."""
    out = anyio.run(cli.logout, settings(tmp_path, **changes), None)
    return (1 if "error" in out else 0), out


def cimd_client() -> OAuthClientInformationFull:
    return OAuthClientInformationFull(client_id=CIMD, token_endpoint_auth_method="none",
                                      redirect_uris=[AnyUrl("http://127.0.0.1:8976/callback")])


def test_the_cimd_identity_revokes_with_a_private_key_jwt(tmp_path, endpoint):
    write_private_jwk(tmp_path / "signing.jwk", "kid-1")
    storage = stored(tmp_path, cimd_client(), endpoint.url)
    status, out = logout(tmp_path, key_file=tmp_path / "signing.jwk")
    assert (status, out) == (0, {"logged_out": True, "revoked": True})
    ((form, headers),) = endpoint.requests
    assert form["token"] == "the-refresh-token"
    assert form["token_type_hint"] == "refresh_token"
    assert form["client_id"] == CIMD
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert jwt.get_unverified_header(form["client_assertion"])["kid"] == "kid-1"
    claims = jwt.decode(form["client_assertion"], options={"verify_signature": False})
    assert (claims["iss"], claims["sub"], claims["aud"]) == (CIMD, CIMD, ISSUER)
    assert "authorization" not in headers
    assert not storage.path.exists()


def test_a_confidential_preregistered_client_revokes_with_http_basic(tmp_path, endpoint):
    client = OAuthClientInformationFull(client_id="mcp-agent-confidential", client_secret="s3cret",
                                        token_endpoint_auth_method="client_secret_basic",
                                        redirect_uris=[AnyUrl("http://127.0.0.1:8976/callback")])
    stored(tmp_path, client, endpoint.url)
    status, _ = logout(tmp_path, preregistered_client_id="mcp-agent-confidential")
    assert status == 0
    ((form, headers),) = endpoint.requests
    assert b64decode(headers["authorization"].removeprefix("Basic ")) == b"mcp-agent-confidential:s3cret"
    assert "client_id" not in form
    assert "client_secret" not in form


def test_a_public_client_names_itself_with_client_id(tmp_path, endpoint):
    client = OAuthClientInformationFull(client_id="dcr-1234", token_endpoint_auth_method="none",
                                        redirect_uris=[AnyUrl("http://127.0.0.1:8976/callback")])
    stored(tmp_path, client, endpoint.url)
    assert logout(tmp_path)[0] == 0
    ((form, headers),) = endpoint.requests
    assert form == {"token": "the-refresh-token", "token_type_hint": "refresh_token", "client_id": "dcr-1234"}
    assert "authorization" not in headers


def test_a_refused_revocation_is_an_error_and_the_files_are_still_deleted(tmp_path, endpoint):
    endpoint.answer = (400, {"error": "invalid_client", "error_description": "Invalid client credentials"})
    storage = stored(tmp_path, cimd_client(), endpoint.url)
    status, out = logout(tmp_path)
    assert status == 1
    assert out["logged_out"] is True
    assert out["revoked"] is False
    assert out["error"]["kind"] == "revocation"
    assert "400 invalid_client: Invalid client credentials" in out["error"]["message"]
    assert "stays valid at the authorization server until it expires" in out["error"]["message"]
    assert not storage.path.exists()


def test_an_authorization_server_without_a_revocation_endpoint_is_said_so(tmp_path):
    storage = stored(tmp_path, cimd_client(), None)
    status, out = logout(tmp_path)
    assert status == 1
    assert "advertises no revocation_endpoint" in out["error"]["message"]
    assert not storage.path.exists()


def test_an_unreachable_authorization_server_is_said_so(tmp_path):
    from tests.support.net import free_port

    storage = stored(tmp_path, cimd_client(), f"http://127.0.0.1:{free_port()}/revoke")
    status, out = logout(tmp_path)
    assert status == 1
    assert out["error"]["message"].startswith("the refresh token was not revoked: cannot connect")
    assert not storage.path.exists()


def test_without_a_refresh_token_there_is_nothing_to_revoke(tmp_path, endpoint):
    stored(tmp_path, cimd_client(), endpoint.url, refresh_token=None)
    assert logout(tmp_path) == (0, {"logged_out": True, "revoked": False})
    assert endpoint.requests == []


def test_the_cli_exit_status_and_json_of_a_failed_revocation(tmp_path, endpoint, capsys, monkeypatch):
    endpoint.answer = (503, {})
    stored(tmp_path, cimd_client(), endpoint.url)
    monkeypatch.setenv("AGENT_CALLBACK_PORT", "8976")
    monkeypatch.setenv("AGENT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AGENT_CLIENT_METADATA_URL", CIMD)
    assert cli.main(["--json", "--server", SERVER, "logout"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["error"]["kind"] == "revocation"
    assert out["logged_out"] is True
    assert cli.main(["--server", SERVER, "logout"]) == 0  # nothing left: nothing to revoke
    assert capsys.readouterr().out.strip() == "Nothing to log out."
