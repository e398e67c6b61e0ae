"""What `make agent` shows: the sign-in URL last and alone on its line, the user by name, and
whether this run signed in or reused the stored tokens."""

import re

import anyio

from mcp_agent.cli import render
from mcp_agent.login import Login, noting_sign_ins, sign_in_prompt

URL = "https://auth.localhost/realms/mcp/protocol/openid-connect/auth?client_id=x&state=y"
SUBJECT = "0b6f4c1e-2d7a-4e8b-9c3f-5a1d2e3f4a5b"


def login_output(**changes):
    out = {
        "registration": "cimd",
        "client_id": "https://cimd.localhost/agents/demo/metadata.json",
        "whoami": {"subject": SUBJECT, "username": None, "granted_scopes": ["mcp:connect", "mcp:tools"],
                   "audience": ["https://mcp.localhost/mcp"]},
        "tools": [{"name": "get_time", "description": "Current time"}],
        "signed_in_now": True,
    }
    return {**out, **changes}


def test_the_sign_in_url_comes_last_alone_on_its_line():
    lines = sign_in_prompt(URL, callback="http://127.0.0.1:8976/callback").splitlines()
    assert [line for line in lines if line.strip()][-1] == f"  {URL}"
    assert "Open this URL to sign in (your browser comes back to http://127.0.0.1:8976/callback):" in lines
    # What tests/integration/test_agent_container.py looks for in the container's output.
    assert any(re.match(r"\s+(https://\S+/protocol/openid-connect/auth\?\S+)$", line) for line in lines)


def test_on_a_terminal_only_the_heading_is_bold():
    prompt = sign_in_prompt(URL, color=True)
    assert "\033[1mOpen this URL to sign in\033[0m:" in prompt
    assert f"\n  {URL}\n" in prompt


def test_the_user_is_named_by_preferred_username():
    text = render(login_output(whoami={**login_output()["whoami"], "username": "alice"}))
    assert "signed in as: alice  scopes: mcp:connect mcp:tools" in text
    assert SUBJECT not in text


def test_a_token_without_a_name_says_that_the_id_is_its_subject():
    """CIMD: the document's scope leaves `profile` out, so the token names no user."""
    text = render(login_output())
    assert f"signed in as: user {SUBJECT} (the token's subject; it carries no user name)" in text


def test_a_run_on_stored_tokens_says_so_and_how_to_start_over():
    assert "session:" not in render(login_output())
    text = render(login_output(signed_in_now=False))
    assert "session: the stored tokens were used, no new sign-in (`logout` forgets them)" in text


def test_machine_mode_has_no_session_to_mention():
    text = render(login_output(registration="client_credentials", signed_in_now=False))
    assert "session:" not in text


def test_logout_says_what_happens_next():
    assert render({"logged_out": True, "revoked": True}).startswith(
        "Logged out: the refresh token is revoked at the authorization server, the stored tokens and registration are deleted")
    assert render({"logged_out": True, "revoked": False}).startswith("Logged out: the stored tokens and registration")
    assert render({"logged_out": False, "revoked": False}) == "Nothing to log out."


def test_a_redirect_to_sign_in_is_recorded():
    login = Login(registration="cimd")
    shown = []

    async def show(url: str) -> None:
        shown.append(url)

    anyio.run(noting_sign_ins(login, show), URL)
    assert shown == [URL]
    assert login.signed_in_now
    assert not Login(registration="cimd").signed_in_now
