"""DPoP (RFC 9449) on the agent's side: its proof key, the proofs, and the server nonces.

With DPoP the access token is bound to a key the agent holds: every token request carries a
proof (a JWT signed with that key, §5), the authorization server puts the key's thumbprint into
the token (`cnf.jkt`) and answers `token_type: DPoP`, and every request to the MCP server then
presents the token as `Authorization: DPoP <token>` with a fresh proof for that request (§7.1),
which names the token by its hash (`ath`). A copied token is useless without the key.

`DPoPAuth` wraps the SDK's OAuth provider (any `httpx2.Auth`, through its public
`async_auth_flow`) and adds the proofs to what the SDK sends, so discovery, registration, PKCE,
refresh and step-up stay the SDK's. It does three things the SDK cannot:

- proofs on the requests to the token endpoint (authorization code, refresh, client credentials)
  and on the MCP request, `Authorization: DPoP` for a token the AS bound (`token_type: DPoP`);
- server nonces (§8, §9): a 400 `use_dpop_nonce` from the token endpoint or a 401 with
  `WWW-Authenticate: DPoP error="use_dpop_nonce"` from the MCP server is answered by sending the
  same request once more with a proof carrying the `DPoP-Nonce` the server gave; nonces are kept
  per origin, so the next request carries one at once;
- the token type: the SDK's `OAuthToken` (mcp 2.3) accepts only `token_type: Bearer` and fails on
  `DPoP`, so the token response is handed to the SDK as `Bearer` after the binding is recorded
  (with the tokens, in the state file: it holds across a restart). This rewrite is the one place
  the agent depends on an SDK limitation; tests/unit/agent/test_dpop.py pins it and fails when the
  SDK learns the DPoP token type.

The key: EC P-256 (ES256, the algorithm every DPoP server takes), a private JWK in a file of the
agent's state directory, mode 0600, created on first use and kept across restarts — Keycloak binds
the refresh token of a public client too, so a new key would lose the session. It is never
logged; `--trace` masks the proofs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import stat
import tempfile
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

PROOF_TYPE = "dpop+jwt"  # RFC 9449 §4.2
ALGORITHM = "ES256"
NONCE_HEADER = "DPoP-Nonce"
USE_NONCE = "use_dpop_nonce"  # RFC 9449 §8 (AS) and §9 (RS)
_DPOP_CHALLENGE = re.compile(r"(?:^|,)\s*DPoP(?:\s|$)", re.IGNORECASE)
_NONCE_ERROR = re.compile(r'\berror="?use_dpop_nonce"?', re.IGNORECASE)


class DPoPKeyError(Exception):
    """The proof key file is unusable (not a private EC P-256 JWK, or readable by others)."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def access_token_hash(token: str) -> str:
    """RFC 9449 §4.2 `ath`: base64url(SHA-256(ASCII token))."""
    return _b64url(hashlib.sha256(token.encode("ascii")).digest())


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of an EC public key (the `cnf.jkt` the AS puts in the token)."""
    members = {name: jwk[name] for name in ("crv", "kty", "x", "y")}
    return _b64url(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())


def target_uri(url: str | httpx2.URL) -> str:
    """RFC 9449 §4.2 `htu`: the request URI without query and fragment."""
    parts = urlsplit(str(url))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def origin(url: str | httpx2.URL) -> str:
    parts = urlsplit(str(url))
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(frozen=True)
class DPoPKey:
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)

    @property
    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {name: jwk[name] for name in ("kty", "crv", "x", "y")}

    @property
    def thumbprint(self) -> str:
        return thumbprint(self.public_jwk)

    def proof(self, method: str, url: str | httpx2.URL, *, access_token: str | None = None, nonce: str | None = None,
              now: float | None = None) -> str:
        """A proof for one request (RFC 9449 §4.2): new `jti` each time, so none is ever replayed."""
        # §4.2: typ dpop+jwt, an asymmetric alg, the public key only in `jwk`.
        return jwt.encode(proof_claims(method, url, access_token=access_token, nonce=nonce, now=now), self.private_key,
                          algorithm=ALGORITHM, headers={"typ": PROOF_TYPE, "jwk": self.public_jwk})


def proof_claims(method: str, url: str | httpx2.URL, *, access_token: str | None = None, nonce: str | None = None,
                 now: float | None = None) -> dict[str, Any]:
    """The claims of a proof for one request (RFC 9449 §4.2), a new `jti` each time."""
    claims: dict[str, Any] = {"jti": secrets.token_urlsafe(16), "htm": method.upper(), "htu": target_uri(url),
                              "iat": int(now if now is not None else time.time())}
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)  # §7.1: the proof names the token it goes with
    if nonce is not None:
        claims["nonce"] = nonce
    return claims


class DPoPKeyFile:
    """The agent's proof key: a private JWK in a 0600 file, created on first use, then reused."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: DPoPKey | None = None

    def key(self) -> DPoPKey:
        if self._key is None:
            self._key = self._load() or self._create()
        return self._key

    def _load(self) -> DPoPKey | None:
        try:
            mode = self.path.stat().st_mode
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            # Whoever can read the key can use a stolen token: like ssh, refuse rather than use it.
            raise DPoPKeyError(f"{self.path} (the DPoP key) is readable by others; run `chmod 600 {self.path}`")
        try:
            data = json.loads(text)
            key = ECAlgorithm.from_jwk(data)
        except (ValueError, jwt.PyJWTError):
            raise DPoPKeyError(f"{self.path} is not a private EC JWK; delete it to make a new DPoP key "
                               "(then sign in again)") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise DPoPKeyError(f"{self.path} is not a private P-256 key; delete it to make a new DPoP key")
        return DPoPKey(key)

    def _create(self) -> DPoPKey:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = ec.generate_private_key(ec.SECP256R1())
        # mkstemp: 0600 from the start; link: appears whole, and only if no other agent process
        # made one meanwhile (then that one is used, so both processes hold the same key).
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".dpop.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(ECAlgorithm.to_jwk(key))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                loaded = self._load()
                assert loaded is not None
                return loaded
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return DPoPKey(key)


class Bindings:
    """Which access token the AS bound (`token_type: DPoP`): kept as the token's hash in the state
    file, beside the tokens, so a restarted agent presents a stored bound token as DPoP."""

    def __init__(self, read: Callable[[], str | None], write: Callable[[str | None], None]) -> None:
        self._read, self._write = read, write
        self._bound: str | None = None
        self._loaded = False

    def bound(self, access_token: str) -> bool:
        if not self._loaded:
            self._bound, self._loaded = self._read(), True
        return self._bound == access_token_hash(access_token)

    def record(self, access_token: str, bound: bool) -> None:
        self._bound, self._loaded = (access_token_hash(access_token) if bound else None), True
        self._write(self._bound)


async def wants_nonce(response: httpx2.Response, *, token_endpoint: bool) -> bool:
    """The server asks for a proof with its nonce: RFC 9449 §8 at the AS (400, `error` in the JSON
    body), §9 at the RS (401, `error` in the DPoP challenge; the body is not read: it may be a stream)."""
    if NONCE_HEADER not in response.headers:
        return False
    if token_endpoint:
        if response.status_code != 400:
            return False
        await response.aread()
        try:
            body = response.json()
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("error") == USE_NONCE
    challenge = response.headers.get("www-authenticate", "")
    return response.status_code == 401 and bool(_DPOP_CHALLENGE.search(challenge) and _NONCE_ERROR.search(challenge))


class DPoPAuth(httpx2.Auth):
    """The SDK's OAuth provider with DPoP proofs added to what it sends (see the module doc)."""

    def __init__(self, inner: httpx2.Auth, key: DPoPKeyFile, bindings: Bindings,
                 token_endpoint: Callable[[], str | None]) -> None:
        self.inner = inner
        self.key = key
        self.bindings = bindings
        self._token_endpoint = token_endpoint
        self._nonces: dict[str, str] = {}  # origin -> the last DPoP-Nonce it gave

    def _is_token_request(self, request: httpx2.Request) -> bool:
        endpoint = self._token_endpoint()
        return request.method == "POST" and endpoint is not None and target_uri(request.url) == target_uri(endpoint)

    def _sign(self, request: httpx2.Request, *, token_request: bool) -> None:
        nonce = self._nonces.get(origin(request.url))
        if token_request:
            request.headers["DPoP"] = self.key.key().proof(request.method, request.url, nonce=nonce)
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() in ("bearer", "dpop") and token and self.bindings.bound(token):
            # RFC 9449 §7.1: a bound token goes with the DPoP scheme and a proof naming it.
            request.headers["Authorization"] = f"DPoP {token}"
            request.headers["DPoP"] = self.key.key().proof(request.method, request.url, access_token=token, nonce=nonce)
        else:
            request.headers.pop("DPoP", None)  # an unbound token (or none): plain Bearer

    def _remember_nonce(self, request: httpx2.Request, response: httpx2.Response) -> bool:
        """Keep a nonce the server gave (§8.2: any response may carry a new one); True if changed."""
        nonce = response.headers.get(NONCE_HEADER)
        if not nonce:
            return False
        previous = self._nonces.get(origin(request.url))
        self._nonces[origin(request.url)] = nonce
        return nonce != previous

    async def _token_response(self, response: httpx2.Response) -> httpx2.Response:
        if response.status_code != 200:
            return response
        await response.aread()
        try:
            body = response.json()
        except ValueError:
            return response
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            return response
        bound = str(body.get("token_type", "")).lower() == "dpop"
        self.bindings.record(body["access_token"], bound)
        if not bound:
            return response
        # mcp 2.3's OAuthToken takes only "Bearer" (see the module doc): the SDK gets the token
        # under that type, and the binding recorded above decides the scheme it is sent with.
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in ("content-length",
                                                                                          "content-encoding")]
        return httpx2.Response(response.status_code, headers=headers, json={**body, "token_type": "Bearer"},
                               request=response.request)

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        flow = self.inner.async_auth_flow(request)
        try:
            outgoing = await flow.__anext__()
            while True:
                token_request = self._is_token_request(outgoing)
                signs = token_request or outgoing is request
                if signs:
                    self._sign(outgoing, token_request=token_request)
                response = yield outgoing
                if signs:
                    fresh = self._remember_nonce(outgoing, response)
                    if fresh and await wants_nonce(response, token_endpoint=token_request):
                        # One retry with the server's nonce (§8, §9); a second refusal goes to the SDK.
                        self._sign(outgoing, token_request=token_request)
                        response = yield outgoing
                        self._remember_nonce(outgoing, response)
                if token_request:
                    response = await self._token_response(response)
                outgoing = await flow.asend(response)
        except StopAsyncIteration:
            return
        finally:
            await flow.aclose()
