"""A mock MCP server and authorization server on an httpx2.MockTransport, for the agent's unit
tests: the 401 with its challenge, PRM, RFC 8414 metadata, and a token endpoint that records
every form it receives. `fail` makes chosen URLs answer with an error status."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx2

MCP = "https://mcp.test/mcp"
ISSUER = "https://as.test/realms/mcp"
TOKEN_ENDPOINT = f"{ISSUER}/protocol/openid-connect/token"
CLIENT_ID = "https://cimd.test/agents/demo/metadata.json"
REDIRECT = "http://127.0.0.1:8976/callback"


@dataclass
class MockAS:
    token_requests: list[dict[str, str]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)  # url -> status

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        url = str(request.url)
        if url in self.fail:
            return httpx2.Response(self.fail[url])
        if url == MCP:
            bearer = request.headers.get("authorization", "")
            if self.issued and bearer == f"Bearer {self.issued[-1]}":
                return httpx2.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": {}})
            return httpx2.Response(401, headers={"www-authenticate": (
                'Bearer scope="mcp:tools", resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp"')})
        if url == "https://mcp.test/.well-known/oauth-protected-resource/mcp":
            return httpx2.Response(200, json={"resource": MCP, "authorization_servers": [ISSUER],
                                              "scopes_supported": ["mcp:tools"]})
        if url == "https://as.test/.well-known/oauth-authorization-server/realms/mcp":
            return httpx2.Response(200, json={
                "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/protocol/openid-connect/auth",
                "token_endpoint": TOKEN_ENDPOINT, "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
                "client_id_metadata_document_supported": True,
                "authorization_response_iss_parameter_supported": True})
        if url == TOKEN_ENDPOINT:
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            self.token_requests.append(form)
            access = secrets.token_urlsafe(16)
            self.issued.append(access)
            return httpx2.Response(200, json={"access_token": access, "token_type": "Bearer",
                                              "expires_in": 300,
                                              "refresh_token": secrets.token_urlsafe(16), "scope": "mcp:tools"})
        return httpx2.Response(404)
