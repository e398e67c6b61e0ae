"""A mock MCP server and authorization server on an httpx2.MockTransport, for the agent's unit
tests: the 401 with its challenge, PRM, RFC 8414 metadata, and a token endpoint that records
every form it receives. `fail` makes chosen URLs answer with an error status.

DPoP (RFC 9449): a token request with a `DPoP` proof gets a token bound to the proof's key
(`token_type: DPoP`), which the MCP endpoint then takes only as `Authorization: DPoP` with a
fresh proof from that key. The proofs are checked by the MCP server's own checker
(mcp_server.dpop.ProofChecker). `as_nonce` / `rs_nonce` make either side demand a nonce (§8, §9)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx2
import jwt

from mcp_server.dpop import ProofChecker, ProofRejected

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
    as_nonce: str | None = None
    rs_nonce: str | None = None
    bound: dict[str, str] = field(default_factory=dict)  # access token -> the jkt it is bound to
    proofs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (url, claims) of accepted proofs
    mcp_requests: list[httpx2.Request] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    checker: ProofChecker = field(default_factory=ProofChecker)

    def _proof(self, request: httpx2.Request, url: str, token: str | None, nonce: str | None) -> str:
        """The request's one proof, checked; its key's thumbprint. ProofRejected if it is bad."""
        proofs = request.headers.get_list("dpop")
        if len(proofs) != 1:
            raise ProofRejected(f"{len(proofs)} DPoP headers")
        checked = self.checker.check(proofs[0], method=request.method, uri=url, access_token=token)
        claims = jwt.decode(proofs[0], options={"verify_signature": False})
        if nonce is not None and claims.get("nonce") != nonce:
            raise ProofRejected("use_dpop_nonce")
        if any(seen["jti"] == claims["jti"] for _, seen in self.proofs):
            raise ProofRejected("replayed")
        self.proofs.append((url, claims))
        return checked.thumbprint

    def _unauthorized(self, error: str | None = None) -> httpx2.Response:
        metadata = 'resource_metadata="https://mcp.test/.well-known/oauth-protected-resource/mcp"'
        if error == "use_dpop_nonce":
            return httpx2.Response(401, headers={"www-authenticate": f'DPoP error="use_dpop_nonce", {metadata}',
                                                 "dpop-nonce": self.rs_nonce or ""})
        if error:
            return httpx2.Response(401, headers={"www-authenticate": f'DPoP error="invalid_dpop_proof", {metadata}'})
        return httpx2.Response(401, headers={"www-authenticate": f'Bearer scope="mcp:tools", {metadata}'})

    def _mcp(self, request: httpx2.Request) -> httpx2.Response:
        self.mcp_requests.append(request)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not self.issued or token != self.issued[-1]:
            return self._unauthorized()
        if token in self.bound:
            if scheme != "DPoP":
                self.refusals.append(f"bound token sent as {scheme}")
                return self._unauthorized("invalid_dpop_proof")
            try:
                jkt = self._proof(request, MCP, token, self.rs_nonce)
            except ProofRejected as exc:
                self.refusals.append(str(exc))
                return self._unauthorized(str(exc) if str(exc) == "use_dpop_nonce" else "invalid_dpop_proof")
            if jkt != self.bound[token]:
                self.refusals.append("proof key is not the token's")
                return self._unauthorized("invalid_dpop_proof")
        elif scheme != "Bearer" or "dpop" in request.headers:
            self.refusals.append(f"unbound token sent as {scheme}")
            return self._unauthorized("invalid_token")
        return httpx2.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": {}})

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        url = str(request.url)
        if url in self.fail:
            return httpx2.Response(self.fail[url])
        if url == MCP:
            return self._mcp(request)
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
            jkt = None
            if "dpop" in request.headers:
                try:
                    jkt = self._proof(request, TOKEN_ENDPOINT, None, self.as_nonce)
                except ProofRejected as exc:
                    self.refusals.append(str(exc))
                    if str(exc) == "use_dpop_nonce":  # RFC 9449 §8
                        return httpx2.Response(400, headers={"dpop-nonce": self.as_nonce or ""},
                                               json={"error": "use_dpop_nonce"})
                    return httpx2.Response(400, json={"error": "invalid_dpop_proof"})
            access = secrets.token_urlsafe(16)
            self.issued.append(access)
            if jkt is not None:
                self.bound[access] = jkt
            return httpx2.Response(200, json={"access_token": access, "token_type": "DPoP" if jkt else "Bearer",
                                              "expires_in": 300,
                                              "refresh_token": secrets.token_urlsafe(16), "scope": "mcp:tools"})
        return httpx2.Response(404)
