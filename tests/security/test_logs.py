"""Secrets stay out of every container's log (Caddy's access log, Keycloak's events, the MCP
server's access log, the egress proxy's decisions).

Runs after every other test (`after_all`): it greps the logs of the whole run for every token,
authorization code, PKCE verifier, client assertion and password the suite used (tests register
them in tests.support.secrets), after adding the worst cases itself: a token sent in the query
string, a code in a redirect's Location header, a refresh grant.
"""

from __future__ import annotations

import pytest
from testcontainers.compose import DockerCompose

from tests.support.login import BEARER_CLIENT, authorize, exchange
from tests.support.logs import all_logs
from tests.support.secrets import USED, remember
from tests.support.stack import STATE, Stack
from tests.support.tokens import token


def private_key_lines() -> list[str]:
    """The body lines of every private key the checkout holds (CA, TLS, agents)."""
    lines = []
    for pem in [*STATE.glob("keys/*/*.pem"), STATE / "ca" / "ca.key", STATE / "ca" / "tls.key"]:
        lines += [line for line in pem.read_text().splitlines() if line and not line.startswith("-----")]
    return lines


@pytest.mark.after_all
def test_no_secret_the_run_used_appears_in_any_log(stack: Stack, compose: DockerCompose):
    user = stack.secret("demo-user-password")
    with stack.client(follow_redirects=False) as http:
        grant = authorize(http, stack, "alice", user)  # the code travels in a 302 Location header
        tokens = exchange(http, stack, grant)
        refreshed = http.post(stack.token_endpoint(), data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": BEARER_CLIENT})
        assert refreshed.status_code == 200, refreshed.text
        remember(refreshed.json()["access_token"], refreshed.json()["refresh_token"])
        # C28 says never put a token in a URL; a careless client does, and the server refuses it.
        careless = token(stack)
        assert http.post(f"{stack.resource_url}?access_token={careless}", json={}).status_code == 401
        assert http.get(f"{stack.issuer}/protocol/openid-connect/userinfo?access_token={careless}").status_code == 401
    remember(user, *(stack.secret(name) for name in ("keycloak-admin-password", "keycloak-admin-client-secret",
                                                     "agent-confidential-client-secret", "machine-client-secret")))

    logs = all_logs(compose)
    for service in ("caddy", "keycloak", "mcp-server", "api"):
        assert logs[service], f"the {service} log is empty: nothing was audited"
    # The redirect and the careless URL were logged, without their query strings.
    assert "/callback?[redacted]" in logs["caddy"]
    assert "/callback?code=" not in logs["caddy"]
    assert "/mcp?[redacted]" in logs["caddy"]
    assert "access_token=" not in logs["caddy"]
    secrets = sorted(USED) + private_key_lines()
    assert len(USED) > 10, "the suite registered too few secrets for this audit to mean anything"
    leaks = {service: [s[:12] + "…" for s in secrets if s in text] for service, text in logs.items()}
    assert leaks == {service: [] for service in logs}
