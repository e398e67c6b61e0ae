"""--trace never prints a secret."""

import io

import anyio
import httpx2

from mcp_agent.trace import Tracer, redact_tokens

SECRET = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNlY3JldA"


def test_codes_assertions_and_tokens_are_masked():
    out = io.StringIO()
    tracer = Tracer(out)
    request = httpx2.Request(
        "POST",
        "https://auth.localhost/token?code=abcdefghijklmnop&state=zzzzzzzzzzzzzz",
        data={"grant_type": "authorization_code", "code_verifier": "v" * 43, "client_assertion": SECRET},
        headers={"authorization": f"Bearer {SECRET}"},
    )
    anyio.run(tracer.on_request, request)
    printed = out.getvalue()
    assert SECRET not in printed
    assert "abcdefghijklmnop" not in printed
    assert "v" * 43 not in printed
    assert "grant_type=authorization_code" in printed


def test_jwts_in_error_text_are_redacted():
    assert SECRET not in redact_tokens(f"failed: {SECRET}")
