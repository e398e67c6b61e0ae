"""C10/C11: CIMD when the AS advertises it, else the pre-registered client, else DCR."""

import anyio
import httpx2
import pytest

from mcp_agent import registration
from mcp_agent.config import AgentSettings

SERVER = "https://mcp.test/mcp"
ISSUER = "https://auth.test/realms/mcp"


def authorization_server(cimd: bool) -> httpx2.AsyncClient:
    def handler(request: httpx2.Request) -> httpx2.Response:
        url = str(request.url)
        if request.method == "POST" and url == SERVER:
            return httpx2.Response(401, headers={
                "www-authenticate": 'Bearer resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp"'})
        if url == "https://mcp.test/.well-known/oauth-protected-resource/mcp":
            return httpx2.Response(200, json={"resource": SERVER, "authorization_servers": [ISSUER]})
        if url == "https://auth.test/.well-known/oauth-authorization-server/realms/mcp":
            return httpx2.Response(200, json={
                "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/auth", "token_endpoint": f"{ISSUER}/token",
                "response_types_supported": ["code"], "client_id_metadata_document_supported": cimd})
        return httpx2.Response(404)

    return httpx2.AsyncClient(transport=httpx2.MockTransport(handler))


@pytest.mark.parametrize(
    ("cimd", "preregistered", "expected"),
    [
        (True, "mcp-agent", "cimd"),
        (False, "mcp-agent", "preregistered"),
        (True, None, "cimd"),
        (False, None, "cimd"),  # no pre-registered client: the SDK itself falls back to DCR
    ],
)
def test_auto_registration_order(cimd, preregistered, expected):
    settings = AgentSettings(server_url=SERVER, callback_port=8976, preregistered_client_id=preregistered)
    assert anyio.run(registration.choose, settings, authorization_server(cimd)) == expected


def test_an_explicit_choice_wins():
    settings = AgentSettings(server_url=SERVER, callback_port=8976, registration="dcr", preregistered_client_id="mcp-agent")
    assert anyio.run(registration.choose, settings, authorization_server(True)) == "dcr"


@pytest.mark.parametrize(("client_id", "reported"), [
    ("https://cimd.test/agents/demo/metadata.json", "cimd"),
    ("mcp-agent", "preregistered"),
    ("4f0c8a4e-6f1d-4b8e-9a55-0b0e1f8d2c11", "dcr"),  # asked for CIMD, the SDK fell back to DCR
])
def test_the_identity_reported_is_the_one_in_use(client_id, reported):
    settings = AgentSettings(server_url=SERVER, callback_port=8976, client_metadata_url="https://cimd.test/agents/demo/metadata.json",
                             preregistered_client_id="mcp-agent")
    assert registration.observed(settings, client_id) == reported
