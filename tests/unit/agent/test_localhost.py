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


def test_the_connection_goes_to_loopback_with_the_real_name_in_host_and_sni():
    import httpx2

    sent = []

    def inner(self, request):
        sent.append(request)
        return httpx2.Response(204, headers={"set-cookie": "session=1; Path=/"})

    with mock.patch.object(localhost, "resolves", return_value=False), \
            mock.patch.object(httpx2.HTTPTransport, "handle_request", inner):
        with httpx2.Client(transport=localhost.LoopbackTransport()) as client:
            response = client.get("https://auth.localhost:8443/realms/mcp")
            client.get("https://auth.localhost:8443/realms/mcp/next")
    assert response.status_code == 204
    (first, second) = sent
    assert str(first.url) == "https://127.0.0.1:8443/realms/mcp"
    assert first.headers["host"] == "auth.localhost:8443"
    assert first.extensions["sni_hostname"] == "auth.localhost"
    # The response still belongs to the real name: its cookie comes back on the next request.
    assert str(response.request.url) == "https://auth.localhost:8443/realms/mcp"
    assert second.headers["cookie"] == "session=1"


def test_each_name_gets_its_own_pool_with_httpx2s_own_transport():
    import ssl

    transport = localhost.sync_transport(ssl.create_default_context())
    import httpx2

    with mock.patch.object(localhost, "resolves", return_value=False), \
            mock.patch.object(httpx2.HTTPTransport, "handle_request", return_value=httpx2.Response(204)):
        for url in ("https://auth.localhost/", "https://mcp.localhost/", "https://auth.localhost/x"):
            transport.handle_request(httpx2.Request("GET", url))
    assert sorted(transport._transports) == ["auth.localhost", "mcp.localhost"]
    assert all(isinstance(t, httpx2.HTTPTransport) for t in transport._transports.values())
