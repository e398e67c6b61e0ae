"""What anonymous registration may ask for (services/registration-guard/registration_metadata.py):
each rule with its exact reason, RFC 7591's defaults, malformed and oversized bodies, and the
check as Caddy's forward_auth reaches it over HTTP, after the rate limiter."""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rate_limiter import ADDRESS_HEADER, CHECKS, LimiterServer, SlidingWindowLimiter, Zone
from registration_metadata import (
    AUTH_METHOD_REASON,
    BODY_HEADER,
    MAX_BODY_BYTES,
    PROVIDER_HEADER,
    Refusal,
    check_headers,
    check_metadata,
    check_request,
    decode_body,
    parse,
)

from tests.support.clock import Clock
from tests.support.dcr import INSPECTOR

PUBLIC = {"redirect_uris": ["http://127.0.0.1:9/callback"], "token_endpoint_auth_method": "none"}
ONLY_CODE_AND_REFRESH = 'anonymous registration allows only "authorization_code" and "refresh_token"'


def b64(body: bytes | str) -> str:
    return base64.b64encode(body.encode() if isinstance(body, str) else body).decode()


def request(metadata: object, provider: str = "openid-connect") -> Refusal | None:
    return check_request(provider, b64(json.dumps(metadata)))


# --- what passes -------------------------------------------------------------------------------


@pytest.mark.parametrize("metadata", [
    INSPECTOR,
    PUBLIC,  # grant_types and response_types absent: authorization_code and code (RFC 7591 §2)
    {**PUBLIC, "grant_types": ["authorization_code"], "response_types": ["code"]},
    {**PUBLIC, "grant_types": ["refresh_token", "authorization_code", "refresh_token"]},
    {**PUBLIC, "grant_types": [], "response_types": []},
    {**PUBLIC, "response_types": ["code", "none"]},  # what Keycloak reports for the client, sent back in an update
    {**PUBLIC, "client_id": "abc", "scope": "mcp:tools", "logo_uri": "https://example.org/logo.png"},  # an RFC 7592 update
], ids=["inspector", "defaults", "code_only", "repeated", "empty_lists", "code_and_none", "update"])
def test_a_public_authorization_code_client_passes(metadata: dict):
    assert check_metadata(metadata) is None
    assert request(metadata) is None


# --- token_endpoint_auth_method ----------------------------------------------------------------


def test_the_auth_method_reason_is_the_one_documented():
    assert AUTH_METHOD_REASON == ('token_endpoint_auth_method must be "none": anonymous registration creates public '
                                  "clients only; use a Client ID Metadata Document for a client with keys")


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt",
                                    "tls_client_auth", "self_signed_tls_client_auth", "None", "NONE", " none", ""])
def test_every_auth_method_but_none_is_refused(method: str):
    assert request({**PUBLIC, "token_endpoint_auth_method": method}) == Refusal(400, AUTH_METHOD_REASON)


@pytest.mark.parametrize("value", [None, ["none"], {"none": True}, 0, False])
def test_an_auth_method_that_is_not_the_string_none_is_refused(value: object):
    assert check_metadata({**PUBLIC, "token_endpoint_auth_method": value}) == AUTH_METHOD_REASON


def test_a_missing_auth_method_is_refused_since_rfc_7591_defaults_it_to_client_secret_basic():
    body = {k: v for k, v in INSPECTOR.items() if k != "token_endpoint_auth_method"}
    refusal = request(body)
    assert refusal == Refusal(400, AUTH_METHOD_REASON)
    assert refusal.body() == {"error": "invalid_client_metadata", "error_description": AUTH_METHOD_REASON}


# --- secrets and keys --------------------------------------------------------------------------


@pytest.mark.parametrize(("member", "value"), [
    ("client_secret", "chosen-by-the-client"), ("client_secret_expires_at", 0),
    ("jwks", {"keys": []}), ("jwks_uri", "https://example.org/jwks.json"), ("jwks_uri", None),
])
def test_secrets_and_keys_are_refused_even_with_auth_method_none(member: str, value: object):
    assert request({**INSPECTOR, member: value}) == Refusal(
        400, f"{member} is not allowed: anonymous registration creates public clients only, without secrets or keys; "
             "use a Client ID Metadata Document for a client with keys")


# --- grant types -------------------------------------------------------------------------------


GRANT_REASONS = {
    "client_credentials": "no user: machine clients are pre-registered by an administrator",
    "password": "removed by OAuth 2.1",
    "implicit": "removed by OAuth 2.1; tokens in URLs",
    "urn:ietf:params:oauth:grant-type:device_code": "not available to anonymous registration",
    "urn:openid:params:grant-type:ciba": "not available to anonymous registration",
    "urn:ietf:params:oauth:grant-type:token-exchange": "not available to anonymous registration",
    "urn:ietf:params:oauth:grant-type:jwt-bearer": "not available to anonymous registration",
    "urn:ietf:params:oauth:grant-type:uma-ticket": "not available to anonymous registration",
    "urn:ietf:params:oauth:grant-type:saml2-bearer": "not available to anonymous registration",
    "Authorization_Code": "not available to anonymous registration",  # exact names only
    "": "not available to anonymous registration",
}


@pytest.mark.parametrize("grant", GRANT_REASONS)
def test_each_other_grant_type_is_refused_by_name_with_its_reason(grant: str):
    refusal = request({**INSPECTOR, "grant_types": ["authorization_code", grant, "refresh_token"]})
    assert refusal == Refusal(400, f'grant type "{grant}" is not allowed ({GRANT_REASONS[grant]}); {ONLY_CODE_AND_REFRESH}')


def test_the_reasons_read_as_documented():
    assert request({**PUBLIC, "grant_types": ["client_credentials"]}) == Refusal(400, (
        'grant type "client_credentials" is not allowed (no user: machine clients are pre-registered by an administrator); '
        'anonymous registration allows only "authorization_code" and "refresh_token"'))


def test_the_first_refused_grant_type_is_named():
    reason = check_metadata({**PUBLIC, "grant_types": ["password", "client_credentials"]})
    assert reason is not None
    assert reason.startswith('grant type "password" is not allowed (removed by OAuth 2.1)')


@pytest.mark.parametrize("value", ["authorization_code", "client_credentials", [1], [["client_credentials"]], [None],
                                   {"client_credentials": True}, None, 1])
def test_grant_types_must_be_an_array_of_strings(value: object):
    # Not a list, so no "single value as array" reading by a lenient parser downstream either.
    assert check_metadata({**PUBLIC, "grant_types": value}) == "grant_types must be an array of strings (RFC 7591 section 2)"


# --- response types ----------------------------------------------------------------------------


IMPLICIT = "implicit flow: removed by OAuth 2.1; tokens in URLs"


@pytest.mark.parametrize(("response_type", "why"), [
    ("token", IMPLICIT), ("id_token", IMPLICIT), ("code id_token", IMPLICIT), ("code token", IMPLICIT),
    ("id_token token", IMPLICIT), ("code id_token token", IMPLICIT),
    ("Code", "not available to anonymous registration"), ("code none", "not available to anonymous registration"),
])
def test_response_types_other_than_code_are_refused(response_type: str, why: str):
    assert request({**INSPECTOR, "response_types": ["code", response_type]}) == Refusal(
        400, f'response type "{response_type}" is not allowed ({why}); anonymous registration allows only "code" (and "none")')


def test_response_types_must_be_an_array_of_strings():
    assert check_metadata({**PUBLIC, "response_types": "code"}) == \
        "response_types must be an array of strings (RFC 7591 section 2)"


def test_rules_apply_in_order_auth_method_secrets_grants_responses():
    everything = {"token_endpoint_auth_method": "client_secret_basic", "client_secret": "x",
                  "grant_types": ["password"], "response_types": ["token"]}
    assert check_metadata(everything) == AUTH_METHOD_REASON
    assert check_metadata({**everything, "token_endpoint_auth_method": "none"}).startswith("client_secret is not allowed")
    del everything["client_secret"]
    assert check_metadata({**everything, "token_endpoint_auth_method": "none"}).startswith('grant type "password"')


# --- values the client chose, in a reason ------------------------------------------------------


def test_a_value_quoted_in_a_reason_is_ascii_escaped_and_cut():
    reason = check_metadata({**PUBLIC, "grant_types": ["é\"\n" + "x" * 500]})
    assert reason is not None
    assert reason.isascii()
    assert reason.startswith('grant type "\\u00e9\\"\\n' + "x" * 77 + '..." is not allowed')
    assert len(reason) < 250


# --- the body ----------------------------------------------------------------------------------


NOT_JSON = "the request body is not valid JSON: client metadata is sent as a JSON object (RFC 7591 section 3.1)"


@pytest.mark.parametrize(("body", "reason"), [
    (b"", "the request body is empty: client metadata is sent as a JSON object (RFC 7591 section 3.1)"),
    (b" \r\n", "the request body is empty: client metadata is sent as a JSON object (RFC 7591 section 3.1)"),
    (b"token_endpoint_auth_method=none", NOT_JSON),
    (b'{"token_endpoint_auth_method": "none"', NOT_JSON),
    (b'{"token_endpoint_auth_method": "none"} {"grant_types": ["client_credentials"]}', NOT_JSON),  # trailing data
    (b"{'token_endpoint_auth_method': 'none'}", NOT_JSON),
    (b'{"token_endpoint_auth_method": "none", /* comment */ "a": 1}', NOT_JSON),
    (b'{"token_endpoint_auth_method": "none", "a": NaN}', NOT_JSON),
    (b'{"token_endpoint_auth_method": "none", "a": Infinity}', NOT_JSON),
    (b'{"token_endpoint_auth_method": "none", "a": ' + b"9" * 5000 + b"}", NOT_JSON),
    (b'{"a": ' + b"[" * 8000 + b"]" * 8000 + b"}", NOT_JSON),  # nested past Python's recursion limit
    ("\ufeff" + json.dumps(PUBLIC), NOT_JSON),  # a byte order mark
    (json.dumps(PUBLIC).encode("utf-16"), "the request body is not UTF-8 (RFC 8259 section 8.1)"),
    (b'{"client_name": "\xff"}', "the request body is not UTF-8 (RFC 8259 section 8.1)"),
    (b'[{"token_endpoint_auth_method": "none"}]', "the request body is an array, not a JSON object of client metadata "
                                                  "(RFC 7591 section 3.1)"),
    (b'"none"', "the request body is a string, not a JSON object of client metadata (RFC 7591 section 3.1)"),
    (b"42", "the request body is a number, not a JSON object of client metadata (RFC 7591 section 3.1)"),
    (b"true", "the request body is a boolean, not a JSON object of client metadata (RFC 7591 section 3.1)"),
    (b"null", "the request body is null, not a JSON object of client metadata (RFC 7591 section 3.1)"),
], ids=["empty", "blank", "form", "truncated", "trailing_data", "single_quotes", "comment", "nan", "infinity",
        "huge_integer", "deep_nesting", "bom", "utf16", "latin1", "array", "string", "number", "boolean", "null"])
def test_a_body_that_is_not_a_json_object_is_refused_with_the_reason(body: bytes | str, reason: str):
    assert check_request("openid-connect", b64(body)) == Refusal(400, reason)


def test_a_member_given_twice_is_refused_rather_than_guessed_at():
    body = '{"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"], "grant_types": ["authorization_code"]}'
    assert check_request("openid-connect", b64(body)) == Refusal(
        400, 'member "grant_types" appears more than once in the request body')


def test_a_body_up_to_the_bound_is_read_and_one_byte_more_is_413():
    body = json.dumps({**PUBLIC, "client_name": ""})
    body = body.replace('""', '"' + "x" * (MAX_BODY_BYTES - len(body)) + '"')
    assert len(body) == MAX_BODY_BYTES == 16384
    assert check_request("openid-connect", b64(body)) is None
    too_large = Refusal(413, "the request body is larger than 16384 bytes; client metadata takes a few hundred")
    assert check_request("openid-connect", b64(body + " ")) == too_large
    assert parse(b"x" * (MAX_BODY_BYTES + 1)) == too_large


def test_what_caddy_sends_when_it_could_not_read_the_body():
    # Over Caddy's own bound (request_body max_size), the placeholder yields its error text.
    assert decode_body("request body: http: request body too large") == Refusal(
        413, "the request body is larger than 16384 bytes; client metadata takes a few hundred")
    assert decode_body("request body: unexpected EOF") == Refusal(400, "the request body could not be read")
    assert decode_body("e30") == Refusal(400, "the request body could not be read")  # base64 without its padding
    assert decode_body("e30=") == b"{}"
    assert decode_body("") == b""


@given(st.binary(max_size=256))
def test_no_body_makes_the_check_fail_open_or_crash(body: bytes):
    refusal = check_request("openid-connect", b64(body))
    assert refusal is None or refusal.status in (400, 413)
    if refusal is None:
        metadata = json.loads(body)
        assert metadata["token_endpoint_auth_method"] == "none"


# --- the provider ------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["default", "", "saml2-entity-descriptor", "install", "openid-connect;x=1",
                                      "OpenID-Connect"])
def test_only_the_rfc_7591_provider_takes_anonymous_registrations(provider: str):
    refusal = request(INSPECTOR, provider)
    assert refusal == Refusal(400, "anonymous registration is open only at clients-registrations/openid-connect "
                                   f'(RFC 7591); provider "{provider}" is not', error="invalid_request")


# --- the headers Caddy sends -------------------------------------------------------------------


def headers(**values: str | list[str]) -> Message:
    message = Message()
    for name, value in values.items():
        for one in value if isinstance(value, list) else [value]:
            message[name.replace("_", "-")] = one
    return message


def test_the_check_reads_the_provider_and_body_headers():
    assert check_headers(headers(X_Registration_Provider="openid-connect", X_Registration_Body=b64(json.dumps(PUBLIC)))) is None
    assert check_headers(headers(X_Registration_Provider="openid-connect", X_Registration_Body=b64("[]"))).status == 400


@pytest.mark.parametrize("sent", [
    {}, {"X_Registration_Provider": "openid-connect"}, {"X_Registration_Body": "e30="},
    {"X_Registration_Provider": "openid-connect", "X_Registration_Body": ["e30=", "e30="]},
    {"X_Registration_Provider": ["openid-connect", "openid-connect"], "X_Registration_Body": "e30="},
], ids=["none", "no_body", "no_provider", "two_bodies", "two_providers"])
def test_a_misconfigured_front_fails_closed(sent: dict):
    assert check_headers(headers(**sent)) == Refusal(
        500, "the registration guard got no request body or provider from the front", error="server_error")


# --- over HTTP: the rate limit first, then the metadata ----------------------------------------


@contextmanager
def guard(limit: int = 3) -> Iterator[int]:
    limiter = SlidingWindowLimiter({"registration": Zone("registration", limit, 60)}, clock=Clock())
    server = LimiterServer(("127.0.0.1", 0), limiter, [ipaddress.ip_address("127.0.0.1")], CHECKS)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def ask(port: int, body: str | None, provider: str = "openid-connect", address: str = "172.31.240.5") -> tuple[int, dict]:
    sent = {ADDRESS_HEADER: address, PROVIDER_HEADER: provider, "X-Forwarded-Method": "POST"}
    if body is not None:
        sent[BODY_HEADER] = b64(body)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/check/registration", headers=sent)
        response = connection.getresponse()
        raw = response.read()
        assert response.getheader("Cache-Control") == ("no-store" if raw else None)
        return response.status, json.loads(raw) if raw else {}
    finally:
        connection.close()


def test_the_guard_answers_200_for_a_public_client_and_400_with_the_reason_otherwise():
    with guard() as port:
        assert ask(port, json.dumps(INSPECTOR)) == (200, {})
        assert ask(port, json.dumps({**INSPECTOR, "grant_types": ["client_credentials"]})) == (400, {
            "error": "invalid_client_metadata",
            "error_description": 'grant type "client_credentials" is not allowed (no user: machine clients are '
                                 'pre-registered by an administrator); anonymous registration allows only '
                                 '"authorization_code" and "refresh_token"'})


def test_a_full_size_body_fits_in_the_header_caddy_sends():
    body = json.dumps({**PUBLIC, "client_name": "x" * (MAX_BODY_BYTES - 200)})
    with guard() as port:
        assert ask(port, body) == (200, {})


def test_every_attempt_counts_refused_metadata_too_and_the_limit_is_checked_first():
    with guard(limit=3) as port:
        assert [ask(port, "not json")[0] for _ in range(3)] == [400, 400, 400]
        status, error = ask(port, json.dumps(INSPECTOR))
        assert status == 429
        assert error["error"] == "too_many_requests"
        assert ask(port, json.dumps(INSPECTOR), address="172.31.240.6") == (200, {})


def test_without_the_body_header_nothing_passes():
    with guard() as port:
        assert ask(port, None)[0] == 500


def test_a_refusal_is_logged_with_its_reason_and_nothing_else_the_client_sent(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO, logger="ratelimit"), guard() as port:
        ask(port, json.dumps({**INSPECTOR, "client_secret": "a-secret-the-client-chose"}))
    (line,) = [r for r in caplog.records if r.getMessage() == "refused metadata"]
    assert line.fields == {"zone": "registration", "address": "172.31.240.5", "status": 400, "reason": (
        "client_secret is not allowed: anonymous registration creates public clients only, without secrets or keys; "
        "use a Client ID Metadata Document for a client with keys")}
    assert "a-secret-the-client-chose" not in caplog.text
