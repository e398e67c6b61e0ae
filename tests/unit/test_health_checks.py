"""Everything that routes traffic to the MCP server, or waits for it, asks its readiness
(`/readyz`: holds a signing key, not draining), not its liveness: compose's health checks (both
topologies), Caddy's active health checks, the image's HEALTHCHECK. The AWS target group is
checked in tests/deploy/test_template.py::test_health_checks."""

from __future__ import annotations

import re

import yaml

from tests.support.stack import ROOT

READINESS = "http://127.0.0.1:8000/readyz"


class ComposeLoader(yaml.SafeLoader):
    """Compose's own tags (`!reset`, `!override`) read as plain values."""


ComposeLoader.add_multi_constructor("!", lambda loader, _tag, node: (
    loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
    else loader.construct_mapping(node) if isinstance(node, yaml.MappingNode) else loader.construct_scalar(node)))


def compose_file(name: str) -> dict:
    return yaml.load((ROOT / "compose" / name).read_text(), Loader=ComposeLoader)  # noqa: S506 (a safe loader)


def test_compose_waits_for_the_mcp_server_to_be_ready():
    check = compose_file("compose.yaml")["services"]["mcp-server"]["healthcheck"]
    assert READINESS in " ".join(check["test"])
    # Keycloak may take minutes to start the first time; until then the replica is not ready,
    # and must not be declared unhealthy (`make up --wait` would give up).
    assert check["start_period"]


def test_every_ha_replica_has_the_readiness_check():
    services = compose_file("compose.ha.yaml")["services"]
    replicas = {name: service for name, service in services.items() if name.startswith("mcp-server")}
    assert set(replicas) == {"mcp-server", "mcp-server-2"}
    base = compose_file("compose.yaml")["services"]["mcp-server"]
    for name, service in replicas.items():
        if name != "mcp-server":  # mcp-server is compose.yaml's, merged; the others extend it
            assert service["extends"] == {"file": "compose.yaml", "service": "mcp-server"}, name
        check = service.get("healthcheck", base["healthcheck"])
        assert READINESS in " ".join(check["test"]), name


def test_caddy_balances_the_mcp_replicas_on_readiness():
    caddyfile = (ROOT / "services" / "caddy" / "Caddyfile").read_text()
    block = re.search(r"^mcp\.localhost:\{\$HTTPS_PORT\} \{\n(.*?)^\}", caddyfile, re.MULTILINE | re.DOTALL)
    assert block is not None
    assert re.search(r"^\s*import upstream_health /readyz 8000$", block.group(1), re.MULTILINE), block.group(1)


def test_the_image_health_check_is_readiness():
    dockerfile = (ROOT / "services" / "mcp-server" / "Dockerfile").read_text()
    (healthcheck,) = re.findall(r"^HEALTHCHECK .*$", dockerfile.replace("\\\n", " "), re.MULTILINE)
    assert READINESS in healthcheck


def test_the_notes_api_is_waited_for_and_balanced_on_readiness_too():
    """The notes API uses the MCP server's health routes (services/api): the same readiness."""
    check = compose_file("compose.yaml")["services"]["api"]["healthcheck"]
    assert READINESS in " ".join(check["test"])
    assert check["start_period"]
    caddyfile = (ROOT / "services" / "caddy" / "Caddyfile").read_text()
    block = re.search(r"^api\.localhost:\{\$HTTPS_PORT\} \{\n(.*?)^\}", caddyfile, re.MULTILINE | re.DOTALL)
    assert block is not None
    assert re.search(r"^\s*import upstream_health /readyz 8000$", block.group(1), re.MULTILINE), block.group(1)
    dockerfile = (ROOT / "services" / "api" / "Dockerfile").read_text()
    (healthcheck,) = re.findall(r"^HEALTHCHECK .*$", dockerfile.replace("\\\n", " "), re.MULTILINE)
    assert READINESS in healthcheck


def test_in_ha_two_notes_api_replicas_share_postgresql_and_are_balanced_on_readiness():
    """TOPOLOGY=ha: the notes live in PostgreSQL (a role and database of the API's own, reached on
    an internal network of its own), the password is a file, never in the URL or the environment,
    and Caddy balances both replicas, each with the readiness check."""
    ha = compose_file("compose.ha.yaml")
    services, base = ha["services"], compose_file("compose.yaml")["services"]["api"]
    assert services["api-2"]["extends"] == {"file": "compose.yaml", "service": "api"}
    for name in ("api", "api-2"):
        service = services[name]
        environment = service["environment"]
        assert environment["API_DATABASE_URL"] == "postgresql://notes@postgres:5432/notes", name
        assert environment["API_DATABASE_PASSWORD_FILE"] == "/run/secrets/notes_db_password", name
        assert "notes_db_password" in service["secrets"], name
        assert set(service["networks"]) == {"edge", "notes-db"}, name
        assert service["volumes"] == [], name  # no SQLite volume: nothing of the notes in a replica
        assert READINESS in " ".join(service.get("healthcheck", base["healthcheck"])["test"]), name
    assert ha["networks"]["notes-db"]["internal"] is True
    assert "notes-db" in services["postgres"]["networks"]
    assert ha["secrets"]["notes_db_password"] == {"file": "../.local/secrets/notes-db-password"}
    assert services["caddy"]["environment"]["API_UPSTREAMS"] == "api:8000 api-2:8000"
