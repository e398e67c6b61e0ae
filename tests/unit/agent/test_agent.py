"""C33: the agent only opens http(s) authorization URLs (http only on loopback), never via a shell."""

import anyio
import pytest

from mcp_agent.login import print_and_open


@pytest.mark.parametrize("url", ["file:///etc/passwd", "javascript:alert(1)", "http://auth.example/authorize",
                                 "ms-settings:xyz"])
def test_non_https_authorization_urls_are_refused(url):
    with pytest.raises(ValueError, match="refusing"):
        anyio.run(lambda: print_and_open(url, open_browser=False))


def test_https_url_is_printed(capsys):
    anyio.run(lambda: print_and_open("https://auth.localhost/realms/mcp/protocol/openid-connect/auth?x=1",
                                     open_browser=False))
    assert "https://auth.localhost/realms/mcp" in capsys.readouterr().err
