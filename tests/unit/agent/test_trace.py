"""--trace never prints a secret: not the state, the code, a token or an assertion, wherever it
sits (query, fragment, form, Authorization header, Location)."""

import base64
import io

import anyio
import httpx2
import pytest

from mcp_agent.trace import SECRET_PARAMS, Tracer, redact_tokens

SECRET = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNlY3JldA"
# One distinct value per secret parameter, each long enough that a masked form cannot contain it.
VALUES = {name: f"{name}-SECRET-value-0123456789" for name in SECRET_PARAMS}


def traced(*exchanges: httpx2.Request | httpx2.Response) -> str:
    out = io.StringIO()
    tracer = Tracer(out)
    for item in exchanges:
        if isinstance(item, httpx2.Request):
            anyio.run(tracer.on_request, item)
        else:
            anyio.run(tracer.on_response, item)
    return out.getvalue()


def assert_no_secret(printed: str) -> None:
    for name, value in VALUES.items():
        assert value not in printed, f"{name} printed unmasked"
    assert SECRET not in printed


@pytest.mark.parametrize("name", sorted(SECRET_PARAMS))
def test_each_secret_parameter_is_masked_in_query_form_fragment_and_location(name):
    value = VALUES[name]
    request = httpx2.Request("POST", "https://auth.localhost/token", params={name: value, "grant_type": "x"},
                             data={name: value, "grant_type": "authorization_code"})
    response = httpx2.Response(302, headers={"location": f"http://127.0.0.1:8976/callback?{name}={value}&iss=x",
                                             "content-type": "text/html"})
    fragment = httpx2.Response(302, headers={"location": f"http://127.0.0.1:8976/callback#{name}={value}"})
    printed = traced(request, response, fragment)
    assert value not in printed
    assert f"{name}={value[:6]}…" in printed  # shown, masked: the trace still says it was there


def test_state_and_code_of_an_authorization_response_are_masked():
    state, code = VALUES["state"], VALUES["code"]
    printed = traced(
        httpx2.Request("GET", f"https://auth.localhost/auth?response_type=code&client_id=c&state={state}"),
        httpx2.Response(302, headers={"location": f"http://127.0.0.1:8976/callback?code={code}&state={state}&iss=i"}),
    )
    assert state not in printed
    assert code not in printed
    assert "response_type=code&client_id=c" in printed  # what is not secret is shown as sent


def test_codes_assertions_and_tokens_are_masked():
    request = httpx2.Request(
        "POST",
        "https://auth.localhost/token",
        data={"grant_type": "authorization_code", "code": VALUES["code"], "code_verifier": VALUES["code_verifier"],
              "client_assertion": SECRET, "refresh_token": VALUES["refresh_token"]},
        headers={"authorization": f"Bearer {SECRET}"},
    )
    printed = traced(request)
    assert_no_secret(printed)
    assert "grant_type=authorization_code" in printed


def test_a_revocation_request_masks_the_token_it_revokes():
    """RFC 7009 §2.1: the token travels as `token`."""
    basic = base64.b64encode(b"client:" + VALUES["client_secret"].encode()).decode()
    request = httpx2.Request("POST", "https://auth.localhost/revoke", headers={"authorization": f"Basic {basic}"},
                             data={"token": VALUES["token"], "token_type_hint": "refresh_token"})
    printed = traced(request)
    assert VALUES["token"] not in printed
    assert basic not in printed
    assert "token_type_hint=refresh_token" in printed


def test_jwts_in_error_text_are_redacted():
    assert SECRET not in redact_tokens(f"failed: {SECRET}")
