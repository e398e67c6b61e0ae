"""HTTPS_PROXY and NO_PROXY are honoured (the agent often runs behind a corporate proxy), the
sandbox CA still verifies the server at the far end of the proxy's tunnel, and *.localhost and
loopback addresses never go to a proxy (it could not reach this machine's loopback).

Real sockets throughout: a TLS server with a certificate from a throwaway CA, and a small CONNECT
proxy on loopback that records every tunnel asked of it and joins it to that server."""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from socketserver import StreamRequestHandler, ThreadingTCPServer
from unittest import mock

import anyio
import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mcp_agent import localhost
from mcp_agent.config import AgentSettings
from mcp_agent.transport import http_client

NAME = "api.example.test"  # reserved (RFC 2606): never resolvable, so only the proxy can reach it


def certificate_authority(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA file, and a server certificate + key for NAME and mcp.localhost signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "throwaway test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME), x509.DNSName("mcp.localhost")]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@dataclass
class Network:
    ca: Path
    server_port: int
    proxy_port: int
    tunnels: list[str] = field(default_factory=list)  # CONNECT targets the proxy was asked for
    served: list[str] = field(default_factory=list)  # Host headers the TLS server answered


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Network]:
    ca, cert, key = certificate_authority(tmp_path)
    served: list[str] = []

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.append(self.headers["host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hello)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    tunnels: list[str] = []

    class Proxy(StreamRequestHandler):
        def handle(self) -> None:
            request = self.rfile.readline().decode()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            method, target, _ = request.split(" ", 2)
            tunnels.append(target)
            if method != "CONNECT":
                self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
                return
            upstream = socket.create_connection(("127.0.0.1", server.server_port))
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            pipe = threading.Thread(target=relay, args=(upstream, self.connection), daemon=True)
            pipe.start()
            relay(self.connection, upstream)
            pipe.join()

    def relay(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass  # the other side closed: the relay ends
        finally:
            for s in (source, target):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    proxy = ThreadingTCPServer(("127.0.0.1", 0), Proxy)
    proxy.daemon_threads = True
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
               for s in (server, proxy)]
    for t in threads:
        t.start()
    yield Network(ca, server.server_port, proxy.server_address[1], tunnels, served)
    for s in (server, proxy):
        s.shutdown()
        s.server_close()


def get(network: Network, url: str, *, ca: bool = True) -> int:
    settings = AgentSettings(callback_port=8976, ca_bundle=network.ca if ca else None)

    async def go() -> int:
        async with http_client(settings) as http:
            return (await http.get(url)).status_code

    return anyio.run(go)


def use_proxy(monkeypatch, network: Network, no_proxy: str = "") -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{network.proxy_port}")
    monkeypatch.setenv("NO_PROXY", no_proxy)


def test_https_proxy_is_used_and_the_configured_ca_verifies_the_far_end(monkeypatch, network):
    use_proxy(monkeypatch, network)
    assert get(network, f"https://{NAME}/") == 204
    assert network.tunnels == [f"{NAME}:443"]
    assert network.served == [NAME]


def test_through_the_proxy_an_untrusted_certificate_is_still_refused(monkeypatch, network):
    use_proxy(monkeypatch, network)
    with pytest.raises(httpx2.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        get(network, f"https://{NAME}/", ca=False)  # the system store does not know the throwaway CA
    assert network.tunnels == [f"{NAME}:443"]
    assert network.served == []


def test_no_proxy_names_are_connected_to_directly(monkeypatch, network):
    use_proxy(monkeypatch, network, no_proxy="localhost,.example.test")
    with pytest.raises(httpx2.ConnectError):
        get(network, f"https://{NAME}/")  # direct: the reserved name does not resolve
    assert network.tunnels == []


def test_localhost_names_never_go_to_the_proxy(monkeypatch, network):
    """NO_PROXY left empty: *.localhost still goes straight to loopback (with the real name in
    SNI and Host), which a proxy elsewhere could never reach."""
    use_proxy(monkeypatch, network)
    with mock.patch.object(localhost, "resolves", return_value=False):
        assert get(network, f"https://mcp.localhost:{network.server_port}/") == 204
    assert network.tunnels == []
    assert network.served == [f"mcp.localhost:{network.server_port}"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_addresses_never_go_to_the_proxy(monkeypatch, network, host):
    use_proxy(monkeypatch, network)
    with pytest.raises(httpx2.ConnectError):  # the certificate names neither; what matters is where it went
        get(network, f"https://{host}:{network.server_port}/")
    assert network.tunnels == []
