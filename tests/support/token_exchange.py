"""A token endpoint doing RFC 8693 token exchange the way Keycloak's standard token exchange does,
for the MCP server's unit tests: the requester authenticates (private_key_jwt, checked like the
fake's introspection), must be in the subject token's `aud`, may ask only for its own scopes, and
gets them only for users holding the permission. The token it issues names the API alone in `aud`
and the requester in `azp`, carries the user's `sub` and only the scope asked for.

`Routes` sends each host to its own transport, so the MCP server (in process) reaches the fake
authorization server and the real notes API app through one HTTP client."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import anyio
import httpx2
import jwt

from tests.support.authorization_server import ISSUER, METADATA_URL, FakeAuthorizationServer, mint

TOKEN_URL = f"{ISSUER}/protocol/openid-connect/token"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


@dataclass
class ExchangingAuthorizationServer:
    fake: FakeAuthorizationServer
    # audience (a client id) -> the scopes a requester may ask for it
    audiences: dict[str, set[str]]
    # the users (sub) holding the permission
    permitted: set[str] = field(default_factory=set)
    lifetime: int = 300
    status: int | None = None  # answer every exchange with this status (an AS in trouble)
    # the next exchanges fail like a node that is stopping, one per entry: a status, "drop"
    # (the connection fails before an answer) or "hang" (no answer at all)
    failures: list[int | str] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        url = str(request.url)
        if url == METADATA_URL and not self.fake.down:
            document = self.fake.handler(request).json()
            return httpx2.Response(200, json={**document, "token_endpoint": TOKEN_URL})
        if url == TOKEN_URL:
            return self.exchange(request)
        return self.fake.handler(request)

    def exchange(self, request: httpx2.Request) -> httpx2.Response:
        if self.fake.down:
            return httpx2.Response(503)
        form = dict(parse_qsl(request.content.decode()))
        if self.failures:
            failure = self.failures.pop(0)
            self.forms.append(form)
            if failure == "drop":
                raise httpx2.ConnectError("connection refused", request=request)
            if failure == "hang":
                return httpx2.Response(200, stream=Hanging())
            return httpx2.Response(int(failure), json={"error": "server_error"})
        if self.status is not None:
            return httpx2.Response(self.status, json={"error": "server_error"})
        self.forms.append(form)
        requester = self.fake.authenticate(form)
        if requester is None:
            return httpx2.Response(401, json={"error": "invalid_client", "error_description": "Invalid client credentials"})
        if form.get("grant_type") != GRANT_TYPE or form.get("subject_token_type") != ACCESS_TOKEN_TYPE:
            return httpx2.Response(400, json={"error": "unsupported_grant_type"})
        try:
            subject = jwt.decode(form.get("subject_token", ""), self.fake.key.public_key(), algorithms=["RS256"],
                                 options={"verify_aud": False})
        except jwt.PyJWTError:
            return httpx2.Response(400, json={"error": "invalid_request", "error_description": "Invalid token"})
        audiences = subject["aud"] if isinstance(subject["aud"], list) else [subject["aud"]]
        if requester not in audiences:
            return httpx2.Response(403, json={"error": "access_denied",
                                              "error_description": "Client is not within the token audience"})
        audience, scope = form.get("audience", ""), form.get("scope", "")
        allowed = self.audiences.get(audience)
        if allowed is None or not set(scope.split()) <= allowed:
            return httpx2.Response(400, json={"error": "invalid_scope", "error_description": f"Invalid scopes: {scope}"})
        if subject["sub"] not in self.permitted:
            return httpx2.Response(400, json={"error": "invalid_request",
                                              "error_description": f"Requested audience not available: {audience}"})
        now = int(time.time())
        token = mint(self.fake.key, {"iss": ISSUER, "aud": audience, "azp": requester, "sub": subject["sub"],
                                     "typ": "Bearer", "scope": scope, "iat": now, "exp": now + self.lifetime,
                                     "jti": str(uuid.uuid4())})
        self.issued.append(token)
        return httpx2.Response(200, json={"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime,
                                          "issued_token_type": ACCESS_TOKEN_TYPE, "scope": scope})

    def http(self, hosts: dict[str, httpx2.AsyncBaseTransport] | None = None) -> httpx2.AsyncClient:
        """One client for the AS (this fake) and any `hosts` (host name -> transport, e.g. the API app)."""
        return httpx2.AsyncClient(transport=Routes(httpx2.MockTransport(self.handler), hosts or {}))


class Routes(httpx2.AsyncBaseTransport):
    def __init__(self, default: httpx2.AsyncBaseTransport, hosts: dict[str, httpx2.AsyncBaseTransport]) -> None:
        self._default = default
        self._hosts = hosts

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        transport = self._hosts.get(request.url.host, self._default)
        return await transport.handle_async_request(request)


class Hanging(httpx2.AsyncByteStream):
    """A response body that never comes (a node that accepted the request and went quiet)."""

    async def __aiter__(self):  # type: ignore[override]
        await anyio.sleep_forever()
        yield b""
