"""WWW-Authenticate challenges (RFC 6750 §3, RFC 9728 §5.1)."""

from mcp_server.challenge import www_authenticate

PRM = "https://mcp.localhost/.well-known/oauth-protected-resource/mcp"


def test_challenge_without_credentials_carries_no_error():
    header = www_authenticate(resource_metadata=PRM, scope="mcp:tools")
    assert header == f'Bearer scope="mcp:tools", resource_metadata="{PRM}"'


def test_insufficient_scope_challenge_lists_scope_and_metadata():
    header = www_authenticate(
        resource_metadata=PRM, scope="mcp:tools mcp:admin", error="insufficient_scope", description="needs admin"
    )
    assert header.startswith('Bearer error="insufficient_scope"')
    assert 'scope="mcp:tools mcp:admin"' in header
    assert f'resource_metadata="{PRM}"' in header


def test_quotes_in_a_description_cannot_break_the_header():
    header = www_authenticate(resource_metadata=PRM, error="invalid_token", description='bad "token", x="y"')
    assert 'error_description="bad \\"token\\", x=\\"y\\""' in header
