"""The authorization-code flow without a browser: Keycloak's login and consent forms posted
with httpx2, for tests that need a code (and its traces in the logs) but no JavaScript.

By default as `mcp-bearer-client`, the sandbox's Bearer-allowed twin of the demo agent's
`mcp-agent` (which requires DPoP: docs/decisions.md, "Which clients must use DPoP"): these tests
send the token as `Bearer`. A test about `mcp-agent` itself passes its id and a DPoP proof.
Against a deployment (`make test-remote`), which has no twins, the default is a public client
registered for the run by anonymous DCR, as a third-party client registers — for which DPoP is
allowed, not required — and deleted at the end of the run (RFC 7592)."""

from __future__ import annotations

import atexit
import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx2

from tests.support.secrets import remember
from tests.support.stack import Stack

# The sandbox realm's Bearer-allowed twin of mcp-agent (services/keycloak/realm/sandbox/).
BEARER_CLIENT = "mcp-bearer-client"

FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


@dataclass
class Authorization:
    code: str
    verifier: str
    redirect_uri: str
    client_id: str


def form_action(page: httpx2.Response) -> str:
    match = FORM_ACTION.search(page.text)
    assert match, f"no form on the page ({page.status_code}): {page.text[:300]}"
    return urljoin(str(page.url), html.unescape(match.group(1)))


_registered: dict[str, str] = {}  # issuer -> the client registered for this run (make test-remote)


def bearer_client(http: httpx2.Client, stack: Stack) -> str:
    """The Bearer-allowed public client for logins: the twin in the sandbox; remotely, one
    registered by anonymous DCR once per run (a public client for the code grant on the loopback
    callback, as the realm's anonymous registration policy allows), deleted when the run ends."""
    if stack.remote is None:
        return BEARER_CLIENT
    if stack.issuer not in _registered:
        response = http.post(f"{stack.issuer}/clients-registrations/openid-connect", json={
            "client_name": "mcp-auth-sandbox test-remote", "redirect_uris": [stack.callback_url],
            "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"], "scope": "mcp:tools offline_access", "application_type": "native"})
        assert response.status_code == 201, f"registering the run's Bearer client: {response.status_code} {response.text}"
        client = response.json()
        remember(client["registration_access_token"])
        _registered[stack.issuer] = client["client_id"]
        atexit.register(_unregister, stack, client["registration_client_uri"], client["registration_access_token"])
    return _registered[stack.issuer]


def _unregister(stack: Stack, uri: str, registration_token: str) -> None:
    with stack.client() as http:
        http.delete(uri, headers={"authorization": f"Bearer {registration_token}"})


_FEEDBACK = re.compile(r'<[^>]*(?:kc-feedback-text|id="input-error")[^>]*>(.*?)</', re.S)
_TITLE = re.compile(r"<title>(.*?)</title>", re.S)


def page_message(page: str) -> str:
    """What a Keycloak page says to its user, for an assertion message: its error or feedback
    text, else its title, else the start of the answer (an HTML page's first lines say nothing)."""
    if "<html" not in page[:500]:
        return page[:300]
    said = [html.unescape(re.sub(r"\s+", " ", text)).strip() for text in _FEEDBACK.findall(page)]
    title = _TITLE.search(page)
    if any(said):
        return "; ".join(t for t in said if t)
    return f"a page titled {html.unescape(title.group(1)).strip()!r}" if title else page[:300]


def authorize(http: httpx2.Client, stack: Stack, username: str, password: str, *, client_id: str | None = None,
              scope: str = "openid mcp:tools offline_access", redirect_uri: str | None = None) -> Authorization:
    """Log in and consent; return the code from the redirect (Keycloak's 302 Location). Without
    `client_id`: as the Bearer-allowed client (`bearer_client`)."""
    client_id = client_id or bearer_client(http, stack)
    redirect_uri = redirect_uri or stack.callback_url
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "scope": scope,
             "state": secrets.token_urlsafe(16), "code_challenge": challenge, "code_challenge_method": "S256",
             "resource": stack.resource_url}
    page = http.get(f"{stack.issuer}/protocol/openid-connect/auth?{urlencode(query)}")
    response = http.post(form_action(page), data={"username": username, "password": password})
    remember(password, verifier)
    for _ in range(5):  # Keycloak's own redirects (required actions), then the consent page
        if response.status_code == 302 and response.headers["location"].startswith(redirect_uri):
            break
        if response.status_code == 302:
            response = http.get(response.headers["location"])
        else:
            assert response.status_code == 200, f"{response.status_code}: {page_message(response.text)}"
            assert 'name="accept"' in response.text, f"no consent page: {page_message(response.text)}"
            response = http.post(form_action(response), data={"accept": "Yes"})
    location = response.headers["location"]
    assert location.startswith(redirect_uri), location
    code = dict(parse_qsl(urlsplit(location).query))["code"]
    remember(code)
    return Authorization(code=code, verifier=verifier, redirect_uri=redirect_uri, client_id=client_id)


def exchange(http: httpx2.Client, stack: Stack, grant: Authorization, *, client_auth: dict[str, str] | None = None,
             **kwargs) -> dict:
    """The code for tokens; `client_auth` adds a confidential client's form fields (a client
    assertion), `kwargs` go to the request (`auth=` for client_secret_basic)."""
    response = http.post(stack.token_endpoint(), data={
        "grant_type": "authorization_code", "code": grant.code, "redirect_uri": grant.redirect_uri,
        "client_id": grant.client_id, "code_verifier": grant.verifier, "resource": stack.resource_url,
        **(client_auth or {})}, **kwargs)
    assert response.status_code == 200, response.text
    tokens = response.json()
    remember(tokens.get("access_token"), tokens.get("refresh_token"), tokens.get("id_token"))
    return tokens
