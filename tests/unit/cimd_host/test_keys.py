"""Agent keys: private keys stay private, rotation publishes old and new, signs with the new."""

import json
import stat

from cimd_host import cimd
from cimd_host.__main__ import render
from cimd_host.keys import KeyDirectory


def test_render_creates_keys_once_and_publishes_only_public_parts(tmp_path):
    render(tmp_path, "https://cimd.localhost", 8976)
    first = KeyDirectory(tmp_path / "keys" / "demo").current()
    render(tmp_path, "https://cimd.localhost", 8976)  # idempotent
    assert KeyDirectory(tmp_path / "keys" / "demo").current() == first
    key_file = tmp_path / "keys" / "demo" / f"{first.kid}.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    public = tmp_path / "cimd-public"
    served = "".join(p.read_text() for p in public.rglob("*") if p.is_file())
    assert "PRIVATE KEY" not in served
    assert '"d"' not in served
    assert not list(public.rglob("*.pem"))


def test_only_the_sandbox_render_publishes_the_bearer_twin(tmp_path):
    render(tmp_path / "production", "https://cimd.example.com", 8976)
    assert not (tmp_path / "production" / "cimd-public" / "agents" / cimd.BEARER_TWIN).exists()
    written = render(tmp_path / "sandbox", "https://cimd.localhost", 8976, sandbox=True)
    twin = tmp_path / "sandbox" / "cimd-public" / "agents" / cimd.BEARER_TWIN / "metadata.json"
    assert twin in written
    assert "dpop_bound_access_tokens" not in json.loads(twin.read_text())


def test_rotation_publishes_both_keys_and_signs_with_the_new_one(tmp_path):
    keys = KeyDirectory(tmp_path / "keys" / "demo")
    old = keys.ensure()
    new = keys.rotate()
    assert keys.current().kid == new.kid != old.kid
    render(tmp_path, "https://cimd.localhost", 8976)
    jwks = json.loads((tmp_path / "cimd-public" / "agents" / "demo" / "jwks.json").read_text())
    assert {k["kid"] for k in jwks["keys"]} == {old.kid, new.kid}
    assert all(k["alg"] == "ES256" and k["use"] == "sig" for k in jwks["keys"])


def test_rotation_keeps_only_the_newest_keys(tmp_path):
    keys = KeyDirectory(tmp_path / "keys" / "demo")
    first = keys.ensure()
    for _ in range(4):
        latest = keys.rotate(keep=2)
    kids = {k.kid for k in keys.keys()}  # noqa: SIM118  (KeyDirectory.keys(), not a dict)
    assert len(kids) == 2
    assert latest.kid in kids
    assert first.kid not in kids


def test_the_signing_key_is_listed_first_in_the_jwks(tmp_path):
    """Keycloak checks an assertion without `kid` against the first key of the JWKS."""
    keys = KeyDirectory(tmp_path / "keys" / "machine")
    keys.ensure()
    for _ in range(6):  # kids are thumbprints: without the ordering, first by chance 1 time in 2
        current = keys.rotate(keep=2)
        assert keys.jwks()["keys"][0]["kid"] == current.kid
        assert len(keys.jwks()["keys"]) == 2


def test_the_agent_signs_with_the_key_cimd_host_keeps_current(tmp_path):
    """The contract between writer and reader is one standard file: signing.jwk, a private JWK
    with its kid. An assertion the agent signs from it verifies against the published JWKS, and
    after a rotation the same file (no restart) signs with the new key."""
    import jwt

    from cimd_host.keys import signing_jwk_path
    from mcp_agent.assertion import SigningKeyFile, client_assertion

    keys = KeyDirectory(tmp_path / "keys" / "demo")
    keys.ensure()
    agent_key = SigningKeyFile(signing_jwk_path(keys.path))
    assert stat.S_IMODE(agent_key.path.stat().st_mode) == 0o600
    for _ in range(2):
        key = agent_key.current()
        assert key.key_id == keys.current().kid
        token = client_assertion(client_id="c", audience="https://as", key_id=key.key_id, private_key=key.key)
        published = jwt.PyJWKSet.from_dict(keys.jwks())[jwt.get_unverified_header(token)["kid"]]
        assert jwt.decode(token, published.key, algorithms=["ES256"], audience="https://as")["iss"] == "c"
        keys.rotate()


def test_a_key_directory_from_before_signing_jwk_gets_one(tmp_path):
    keys = KeyDirectory(tmp_path / "keys" / "demo")
    first = keys.ensure()
    (keys.path / "signing.jwk").unlink()
    assert keys.ensure() == first
    assert json.loads((keys.path / "signing.jwk").read_text())["kid"] == first.kid


def test_the_mcp_servers_key_is_readable_in_its_container(tmp_path):
    keys = KeyDirectory(tmp_path / "keys" / "mcp-server", readable_in_container=True)
    keys.ensure()
    assert stat.S_IMODE((keys.path / "signing.jwk").stat().st_mode) == 0o644
