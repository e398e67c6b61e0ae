"""*.localhost goes to loopback only where the system cannot resolve it."""

from unittest import mock

from mcp_agent import localhost


def test_unresolvable_localhost_names_go_to_loopback():
    with mock.patch.object(localhost, "resolves", return_value=False):
        assert localhost.loopback_for("auth.localhost") == "127.0.0.1"
        assert localhost.loopback_for("AUTH.LOCALHOST.") == "127.0.0.1"


def test_resolvable_names_are_left_alone():
    # Inside the compose network Docker's DNS answers; 127.0.0.1 there would be the container.
    with mock.patch.object(localhost, "resolves", return_value=True):
        assert localhost.loopback_for("auth.localhost") == "auth.localhost"


def test_other_names_are_never_rewritten():
    assert localhost.loopback_for("example.com") == "example.com"
    assert localhost.loopback_for("localhost.example.com") == "localhost.example.com"
