"""The local CA (compose/scripts/ca.sh) can vouch only for localhost names: a leaf it signs for a
real domain or for any IPv4/IPv6 address fails verification, so a leaked CA key cannot
impersonate anything outside the sandbox."""

from __future__ import annotations

import datetime
import ipaddress
import os
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.stack import ROOT


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("ca")
    subprocess.run(["bash", str(ROOT / "compose" / "scripts" / "ca.sh")], env={**os.environ, "CA_DIR": str(directory)},
                   check=True, capture_output=True)
    return directory


def leaf(ca: Path, tmp_path: Path, name: x509.GeneralName) -> Path:
    ca_cert = x509.load_pem_x509_certificate((ca / "ca.pem").read_bytes())
    ca_key = serialization.load_pem_private_key((ca / "ca.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([name]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    path = tmp_path / "leaf.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def verify(ca: Path, cert: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", "verify", "-CAfile", str(ca / "ca.pem"), str(cert)], capture_output=True, text=True)


@pytest.mark.parametrize("name", ["mcp.localhost", "auth.localhost", "localhost"])
def test_localhost_names_verify(ca: Path, tmp_path: Path, name: str):
    result = verify(ca, leaf(ca, tmp_path, x509.DNSName(name)))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", [
    x509.DNSName("example.com"),
    x509.DNSName("localhost.example.com"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("203.0.113.7")),
    x509.IPAddress(ipaddress.ip_address("::1")),
    x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
], ids=str)
def test_a_leaf_for_a_real_domain_or_any_ip_address_fails(ca: Path, tmp_path: Path, name: x509.GeneralName):
    result = verify(ca, leaf(ca, tmp_path, name))
    assert result.returncode != 0
    assert "subtree violation" in result.stdout + result.stderr  # refused for its name, not by accident


def test_the_checkout_ca_carries_the_ip_exclusions(ca: Path):
    constraints = x509.load_pem_x509_certificate((ca / "ca.pem").read_bytes()).extensions.get_extension_for_class(
        x509.NameConstraints)
    assert constraints.critical
    assert constraints.value.permitted_subtrees == [x509.DNSName("localhost")]
    assert set(constraints.value.excluded_subtrees) == {
        x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")), x509.IPAddress(ipaddress.ip_network("::/0"))}
