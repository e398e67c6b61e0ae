"""Typed settings: the public names the server answers to (RS20)."""

from mcp_server.config import Settings


def test_the_default_port_is_the_same_origin_with_or_without_it():
    settings = Settings(resource_url="https://mcp.localhost/mcp")
    assert settings.public_hosts == ["mcp.localhost", "mcp.localhost:443"]
    assert settings.public_origins == ["https://mcp.localhost", "https://mcp.localhost:443"]


def test_an_explicit_default_port_in_the_url_still_accepts_the_bare_name():
    assert Settings(resource_url="https://mcp.localhost:443/mcp").public_hosts == ["mcp.localhost", "mcp.localhost:443"]


def test_another_port_is_required_exactly():
    settings = Settings(resource_url="https://mcp.localhost:8443/mcp")
    assert settings.public_hosts == ["mcp.localhost:8443"]
    assert settings.public_origins == ["https://mcp.localhost:8443"]
