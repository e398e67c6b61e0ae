"""The AWS template (deploy/aws), synthesized offline: every promise of docs/production.md
checked by its effect in the CloudFormation template."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from aws_cdk.assertions import Match
from mcp_deploy.config import ROOT

from mcp_server.config import Settings
from tests.support.deploy import Synthesized, deploy_config, rendered_state, synthesized

pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def synth() -> Synthesized:
    return synthesized()


def resources(synth: Synthesized, kind: str) -> dict[str, dict]:
    return synth.template.find_resources(kind)


def one(synth: Synthesized, kind: str, props: dict | None = None) -> tuple[str, dict]:
    found = synth.template.find_resources(kind, {"Properties": props} if props else None)
    assert len(found) == 1, f"{kind}: {len(found)} found"
    return next(iter(found.items()))


def listener_resources(synth: Synthesized) -> list[dict]:
    return list(resources(synth, "AWS::ElasticLoadBalancingV2::Listener").values())


def logical_id(synth: Synthesized, construct) -> str:
    return synth.stack.get_logical_id(construct.node.default_child)


# --- network and edge -------------------------------------------------------------------------

def test_vpc_spans_two_availability_zones(synth: Synthesized):
    subnets = resources(synth, "AWS::EC2::Subnet").values()
    zones = {str(s["Properties"]["AvailabilityZone"]) for s in subnets}
    assert len(subnets) == 6  # public, app, data in each AZ
    assert len(zones) == 2


def test_alb_is_internet_facing_https_only_with_a_modern_tls_policy(synth: Synthesized):
    _, alb = one(synth, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert alb["Properties"]["Scheme"] == "internet-facing"
    attributes = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    assert attributes["idle_timeout.timeout_seconds"] == "300"  # streamable HTTP
    # The ALB closes idle connections before the MCP server would: no 502 from a closing connection.
    assert Settings().keep_alive_seconds > int(attributes["idle_timeout.timeout_seconds"])
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"
    listeners = {listener["Properties"]["Port"]: listener["Properties"] for listener in listener_resources(synth)}
    assert set(listeners) == {80, 443}
    assert listeners[443]["Protocol"] == "HTTPS"
    assert listeners[443]["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert len(listeners[443]["Certificates"]) == 1
    (redirect,) = listeners[80]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    assert redirect["RedirectConfig"]["Port"] == "443"


def test_everything_not_routed_gets_a_fixed_404(synth: Synthesized):
    listener = next(item["Properties"] for item in listener_resources(synth) if item["Properties"]["Port"] == 443)
    (default,) = listener["DefaultActions"]
    assert default["Type"] == "fixed-response"
    assert default["FixedResponseConfig"]["StatusCode"] == "404"


def rules(synth: Synthesized) -> list[dict]:
    found = [r["Properties"] for r in resources(synth, "AWS::ElasticLoadBalancingV2::ListenerRule").values()]
    return sorted(found, key=lambda r: r["Priority"])


def conditions(rule: dict) -> dict[str, list[str]]:
    out = {}
    for condition in rule["Conditions"]:
        field = condition["Field"]
        key = {"host-header": "HostHeaderConfig", "path-pattern": "PathPatternConfig"}[field]
        out[field] = condition[key]["Values"]
    return out


def target_port(synth: Synthesized, rule: dict) -> int:
    (action,) = rule["Actions"]
    (group,) = action["TargetGroupArn"].values()  # {"Ref": id}
    return synth.template.to_json()["Resources"][group]["Properties"]["Port"]


def test_listener_rules_expose_only_the_served_realm_in_this_order(synth: Synthesized):
    found = [conditions(r) for r in rules(synth)]
    auth, mcp, cimd, api = "auth.mcp.example.com", "mcp.mcp.example.com", "cimd.mcp.example.com", "api.mcp.example.com"
    assert found == [
        {"host-header": [auth], "path-pattern": ["/realms/mcp/*", "/resources/*"]},
        {"host-header": [auth], "path-pattern": ["/.well-known/openid-configuration/realms/mcp"]},
        {"host-header": [auth], "path-pattern": ["/.well-known/oauth-authorization-server/realms/mcp"]},
        {"host-header": [mcp]},
        {"host-header": [cimd]},
        {"host-header": [api]},
    ]
    # The master realm, the admin console and API are not matched by any rule: the 404 default.
    patterns = [p for c in found for p in c.get("path-pattern", [])]
    for path in ("/realms/master/protocol/openid-connect/token", "/admin/master/console/", "/admin/realms/mcp/users",
                 "/realms/mcpx/", "/health/ready", "/metrics"):
        assert not any(re.fullmatch(p.replace("*", ".*"), path) for p in patterns), path


def test_no_rule_routes_to_the_management_port(synth: Synthesized):
    assert [target_port(synth, r) for r in rules(synth)] == [8080, 8080, 8080, 8000, 8080, 8000]


def test_oidc_path_inserted_discovery_is_rewritten_onto_the_realm_document(synth: Synthesized):
    """MCP C5's second form, /.well-known/openid-configuration/realms/<realm>, which Keycloak does
    not serve: the ALB rewrites the path (no redirect a client might not follow) and forwards to
    Keycloak, as Caddy does in the sandbox. The RFC 8414 form is Keycloak's own and only forwarded."""
    (rewriting,) = [r for r in rules(synth) if r.get("Transforms")]
    assert conditions(rewriting) == {"host-header": ["auth.mcp.example.com"],
                                     "path-pattern": ["/.well-known/openid-configuration/realms/mcp"]}
    (transform,) = rewriting["Transforms"]
    assert transform["Type"] == "url-rewrite"
    (rewrite,) = transform["UrlRewriteConfig"]["Rewrites"]
    # What the ALB will do to the one path this rule matches, and to nothing else.
    regex = rewrite["Regex"]
    assert re.sub(regex, rewrite["Replace"], "/.well-known/openid-configuration/realms/mcp") == \
        "/realms/mcp/.well-known/openid-configuration"
    assert not re.search(regex, "/.well-known/openid-configuration/realms/mcpx")
    assert not re.search(regex, "/.well-known/openid-configuration/realms/master")
    (action,) = rewriting["Actions"]
    assert action["Type"] == "forward"
    assert target_port(synth, rewriting) == 8080
    # The sandbox answers the same path the same way (services/caddy/Caddyfile).
    caddyfile = (ROOT / "services" / "caddy" / "Caddyfile").read_text()
    assert "rewrite @oidc_path_inserted /realms/{re.oidc.1}/.well-known/openid-configuration" in caddyfile
    (well_known,) = [r for r in rules(synth) if conditions(r).get("path-pattern") ==
                     ["/.well-known/oauth-authorization-server/realms/mcp"]]
    assert "Transforms" not in well_known


def test_health_checks(synth: Synthesized):
    groups = [g["Properties"] for g in resources(synth, "AWS::ElasticLoadBalancingV2::TargetGroup").values()]
    (keycloak,) = [g for g in groups if g.get("HealthCheckPort") == "9000"]
    assert keycloak["Port"] == 8080  # traffic on 8080; readiness on the management port
    assert keycloak["HealthCheckPath"] == "/health/ready"
    by_host = {name: synth.template.to_json()["Resources"][logical_id(synth, group)]["Properties"]
               for name, group in synth.stack.edge.target_groups.items()}
    mcp, api = by_host["Mcp"], by_host["Api"]
    # Readiness, not liveness: a task without the issuer's signing keys (or draining) gets no traffic.
    assert mcp["HealthCheckPath"] == api["HealthCheckPath"] == "/readyz"
    assert mcp["Port"] == api["Port"] == 8000
    mcp_attributes = {a["Key"]: a["Value"] for a in mcp["TargetGroupAttributes"]}
    assert mcp_attributes["deregistration_delay.timeout_seconds"] == "60"
    assert mcp_attributes.get("stickiness.enabled", "false") == "false"  # stateless


def test_four_public_names_in_route53_point_at_the_alb(synth: Synthesized):
    records = sorted(r["Properties"]["Name"] for r in resources(synth, "AWS::Route53::RecordSet").values()
                     if r["Properties"]["Type"] == "A")
    assert records == ["api.mcp.example.com.", "auth.mcp.example.com.", "cimd.mcp.example.com.", "mcp.mcp.example.com."]
    _, certificate = one(synth, "AWS::CertificateManager::Certificate")
    assert certificate["Properties"]["ValidationMethod"] == "DNS"
    assert sorted([certificate["Properties"]["DomainName"], *certificate["Properties"]["SubjectAlternativeNames"]]) == [
        "api.mcp.example.com", "auth.mcp.example.com", "cimd.mcp.example.com", "mcp.mcp.example.com"]


def test_a_given_certificate_is_used_instead_of_creating_one():
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
    synth = synthesized(certificate_arn=arn)
    assert resources(synth, "AWS::CertificateManager::Certificate") == {}
    listener = next(item["Properties"] for item in listener_resources(synth) if item["Properties"]["Port"] == 443)
    assert listener["Certificates"] == [{"CertificateArn": arn}]


# --- services --------------------------------------------------------------------------------

def services(synth: Synthesized) -> dict[str, dict]:
    by_name = {}
    for service in resources(synth, "AWS::ECS::Service").values():
        task = synth.template.to_json()["Resources"][service["Properties"]["TaskDefinition"]["Ref"]]
        (container,) = task["Properties"]["ContainerDefinitions"]
        by_name[container["Name"]] = {"service": service["Properties"], "container": container,
                                      "task": task["Properties"]}
    return by_name


def test_keycloak_and_mcp_run_at_least_two_tasks_each(synth: Synthesized):
    found = services(synth)
    assert set(found) == {"keycloak", "mcp-server", "cimd-host", "egress", "api"}
    for name in found:
        assert found[name]["service"]["DesiredCount"] >= 2, name
        assert found[name]["service"]["LaunchType"] == "FARGATE"
        assert found[name]["service"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"


def env(container: dict) -> dict[str, str]:
    return {e["Name"]: e["Value"] for e in container.get("Environment", [])}


def test_keycloak_is_clustered_on_aurora_with_the_public_issuer(synth: Synthesized):
    keycloak = services(synth)["keycloak"]["container"]
    settings = env(keycloak)
    assert settings["KC_HOSTNAME"] == "https://auth.mcp.example.com"
    assert settings["KC_PROXY_HEADERS"] == "xforwarded"
    assert "KC_PROXY_TRUSTED_ADDRESSES" in settings  # the VPC's CIDR (a token until deploy)
    assert settings["KC_SPI_CONNECTIONS_HTTP_CLIENT__DEFAULT__PROXY_MAPPINGS"] == ".*;http://egress.mcp-auth-prod.internal:4750"
    # The realm exists at the first start, before the MCP tasks (ready only with its signing keys).
    assert keycloak["Command"] == ["start", "--optimized", "--import-realm"]
    _, cluster = one(synth, "AWS::RDS::DBCluster", {"DBClusterIdentifier": "mcp-auth-prod-keycloak"})
    assert cluster["Properties"]["Engine"] == "aurora-postgresql"
    assert cluster["Properties"]["StorageEncrypted"] is True
    assert cluster["Properties"]["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 4}
    # Users, consents and clients outlive the stack: deleting it needs deletion protection off
    # first, and leaves a final snapshot.
    assert cluster["DeletionPolicy"] == "Snapshot"
    assert cluster["Properties"]["DeletionProtection"] is True
    # Built from the sandbox's own Dockerfile, with the database vendor set at build time.
    images = synth.assets["dockerImages"].values()
    keycloak_image = next(i for i in images if i["source"].get("dockerBuildArgs", {}).get("KC_DB"))
    assert keycloak_image["source"]["dockerBuildArgs"]["KC_DB"] == "postgres"


def test_secrets_are_never_plain_environment_variables(synth: Synthesized):
    for definition in resources(synth, "AWS::ECS::TaskDefinition").values():
        for container in definition["Properties"]["ContainerDefinitions"]:
            names = set(env(container))
            assert not {n for n in names if re.search(r"PASSWORD|SECRET|TOKEN|KEY", n)}, container["Name"]
            for value in env(container).values():
                assert not re.search(r"(?i)password|secret", str(value)), container["Name"]
    keycloak = services(synth)["keycloak"]["container"]
    assert {s["Name"] for s in keycloak["Secrets"]} == {"KC_DB_USERNAME", "KC_DB_PASSWORD", "KC_BOOTSTRAP_ADMIN_PASSWORD",
                                                        "KC_BOOTSTRAP_ADMIN_CLIENT_SECRET"}


def test_the_mcp_server_uses_the_compose_setting_names(synth: Synthesized):
    names = set(env(services(synth)["mcp-server"]["container"]))
    known = {f"MCP_{name.upper()}" for name in Settings.model_fields}
    assert names <= known
    assert {"MCP_ISSUER", "MCP_RESOURCE_URL", "MCP_TRUSTED_PROXIES"} <= names
    assert env(services(synth)["mcp-server"]["container"])["MCP_ISSUER"] == "https://auth.mcp.example.com/realms/mcp"


def test_mcp_server_autoscales_on_cpu_and_requests_per_target(synth: Synthesized):
    _, target = one(synth, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["Properties"]["MinCapacity"] >= 2
    policies = resources(synth, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    metrics = sorted(p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
                     ["PredefinedMetricType"] for p in policies)
    assert metrics == ["ALBRequestCountPerTarget", "ECSServiceAverageCPUUtilization"]


def test_the_realm_comes_from_the_production_profile_of_the_realm_files_by_a_one_off_task(synth: Synthesized):
    imports = [d for d in resources(synth, "AWS::ECS::TaskDefinition").values()
               if d["Properties"]["ContainerDefinitions"][0]["Name"] == "realm-import"]
    (definition,) = imports
    container = definition["Properties"]["ContainerDefinitions"][0]
    assert container["Command"] == ["import", "--file", "/opt/keycloak/data/import/mcp-realm.json", "--override", "false"]
    # The production profile has no demo users and no client secrets: only the database's secrets.
    assert {s["Name"] for s in container["Secrets"]} == {"KC_DB_USERNAME", "KC_DB_PASSWORD"}
    # Both images that carry the realm files render the production profile (services/keycloak/realm/profile.py).
    images = {k: v for k, v in synth.assets.get("dockerImages", {}).items()
              if v["source"].get("dockerBuildArgs", {}).get("REALM_PROFILE")}
    assert len(images) == 2
    assert {v["source"]["dockerBuildArgs"]["REALM_PROFILE"] for v in images.values()} == {"production"}
    outputs = synth.template.to_json()["Outputs"]
    assert "RealmImportCommand" in outputs


def test_the_template_imports_and_syncs_the_production_realm(synth: Synthesized, tmp_path):
    """The realm files' production profile (services/keycloak/realm/profile.py) is what both
    images carry, and the file the import and realm-sync name is in it: the served realm, with
    no demo users and none of the sandbox's test-only clients."""
    profile = ROOT / "services" / "keycloak" / "realm" / "profile.py"
    source = profile.parent
    subprocess.run([sys.executable, str(profile), "--profile", "production", str(source), str(tmp_path / "prod")],
                   check=True)
    subprocess.run([sys.executable, str(profile), "--profile", "sandbox", str(source), str(tmp_path / "sandbox")],
                   check=True)
    production = json.loads((tmp_path / "prod" / "mcp-realm.json").read_text())
    sandbox = json.loads((tmp_path / "sandbox" / "mcp-realm.json").read_text())
    assert production["realm"] == "mcp"
    # No people: only the machine clients' service-account users; the demo users are the sandbox's.
    assert all("serviceAccountClientId" in u for u in production.get("users", []))
    demo = {u["username"] for u in sandbox["users"] if "serviceAccountClientId" not in u}
    assert {"alice", "ada", "nora"} <= demo
    clients = {c["clientId"] for c in production["clients"]}
    assert clients < {c["clientId"] for c in sandbox["clients"]}
    # The files each image renders it into, and the file names the tasks use.
    keycloak_dockerfile = (ROOT / "services" / "keycloak" / "Dockerfile").read_text()
    assert 'profile.py --profile "${REALM_PROFILE}" /src /out' in keycloak_dockerfile
    assert "--from=realm /out/ /opt/keycloak/data/import/" in keycloak_dockerfile
    realm_sync_dockerfile = (ROOT / "services" / "realm-sync" / "Dockerfile").read_text()
    assert 'profile.py --profile "${REALM_PROFILE}" /tmp/realm /realm' in realm_sync_dockerfile
    commands = [d["Properties"]["ContainerDefinitions"][0].get("Command", [])
                for d in resources(synth, "AWS::ECS::TaskDefinition").values()]
    assert ["import", "--file", "/opt/keycloak/data/import/mcp-realm.json", "--override", "false"] in commands
    assert any(c[-1:] == ["/realm/mcp-realm.json"] and "--server" in c for c in commands)
    builds = [i["source"].get("dockerBuildArgs", {}) for i in synth.assets["dockerImages"].values()]
    assert sorted(b["REALM_PROFILE"] for b in builds if "REALM_PROFILE" in b) == ["production", "production"]


def test_the_mcp_server_answers_generic_rejection_descriptions(synth: Synthesized):
    assert env(services(synth)["mcp-server"]["container"])["MCP_GENERIC_ERRORS"] == "true"


def test_the_mcp_server_carries_the_dpop_mode(synth: Synthesized):
    """RFC 9449: DPoP-bound or bearer tokens by default, as in the sandbox (`dpop` in config.toml)."""
    assert env(services(synth)["mcp-server"]["container"])["MCP_DPOP"] == "allowed"


@pytest.mark.parametrize("mode", ["on", "Required", ""])
def test_a_dpop_mode_the_server_does_not_know_is_refused(mode: str):
    with pytest.raises(ValueError, match="dpop must be allowed, required or off"):
        deploy_config(rendered_state(), dpop=mode)


# --- components --------------------------------------------------------------------------------

def test_the_stack_is_composed_of_one_construct_per_component(synth: Synthesized):
    from mcp_deploy.components.cimd_host import CimdHost
    from mcp_deploy.components.database import Database
    from mcp_deploy.components.edge import Edge
    from mcp_deploy.components.egress import EgressProxy
    from mcp_deploy.components.keycloak import Keycloak
    from mcp_deploy.components.mcp_server import McpServer
    from mcp_deploy.components.network import Network
    from mcp_deploy.components.notes_api import NotesApi
    from mcp_deploy.components.operations import Operations
    from mcp_deploy.components.realm_sync import RealmSync

    kinds = {type(child) for child in synth.stack.node.children}
    assert {Network, Database, EgressProxy, Keycloak, RealmSync, McpServer, CimdHost, NotesApi, Edge,
            Operations} <= kinds
    # The handles the others wire to.
    for service in (synth.stack.egress, synth.stack.keycloak, synth.stack.mcp, synth.stack.cimd, synth.stack.database,
                    synth.stack.api, synth.stack.api_database):
        assert service.connections.security_groups, type(service).__name__
    assert set(synth.stack.edge.target_groups) == {"Keycloak", "Mcp", "Cimd", "Api"}


def test_suppressions_name_component_handles_not_construct_paths():
    source = (ROOT / "deploy" / "aws" / "src" / "mcp_deploy" / "suppressions.py").read_text()
    assert "find_child" not in source
    assert "add_resource_suppressions_by_path" not in source


# --- security groups: Keycloak's only way out is the egress proxy --------------------------------

def group_rules(synth: Synthesized, construct) -> tuple[list[dict], list[dict]]:
    group = synth.template.to_json()["Resources"][logical_id(synth, construct)]["Properties"]
    egress = list(group.get("SecurityGroupEgress", []))
    ingress = list(group.get("SecurityGroupIngress", []))
    gid = logical_id(synth, construct)
    for rule in resources(synth, "AWS::EC2::SecurityGroupEgress").values():
        if rule["Properties"]["GroupId"] == {"Fn::GetAtt": [gid, "GroupId"]}:
            egress.append(rule["Properties"])
    for rule in resources(synth, "AWS::EC2::SecurityGroupIngress").values():
        if rule["Properties"]["GroupId"] == {"Fn::GetAtt": [gid, "GroupId"]}:
            ingress.append(rule["Properties"])
    return ingress, egress


def test_keycloak_has_no_route_to_the_internet_but_the_proxy(synth: Synthesized):
    _, egress = group_rules(synth, synth.stack.keycloak.security_group)
    assert egress, "no egress rules at all"
    for rule in egress:
        assert rule.get("CidrIp") != "0.0.0.0/0", rule
        assert "CidrIpv6" not in rule
    ports = sorted({(r["FromPort"], r.get("Description", "")) for r in egress})
    assert {p for p, _ in ports} == {443, 4750, 5433, 7800, 57800}
    proxy_rules = [r for r in egress if r["FromPort"] == 4750]
    proxy = {"Fn::GetAtt": [logical_id(synth, synth.stack.egress.security_group), "GroupId"]}
    assert [r["DestinationSecurityGroupId"] for r in proxy_rules] == [proxy]
    https = [r for r in egress if r["FromPort"] == 443]
    assert all("DestinationSecurityGroupId" in r or "DestinationPrefixListId" in r for r in https)


def test_only_the_proxy_reaches_the_internet_and_only_on_443(synth: Synthesized):
    _, egress = group_rules(synth, synth.stack.egress.security_group)
    internet = [r for r in egress if r.get("CidrIp") == "0.0.0.0/0"]
    assert [(r["FromPort"], r["ToPort"]) for r in internet] == [(443, 443)]


def test_the_database_accepts_only_keycloak(synth: Synthesized):
    ingress, _ = group_rules(synth, synth.stack.database.security_group)
    assert [(r["FromPort"], r["SourceSecurityGroupId"]) for r in ingress] == [
        (5433, {"Fn::GetAtt": [logical_id(synth, synth.stack.keycloak.security_group), "GroupId"]})]


def test_realm_changes_reach_the_live_realm_through_a_realm_sync_task(synth: Synthesized):
    """The tool make up runs (services/realm-sync), as a one-off task: the served realm's file only,
    against one Keycloak task's admin API (keycloak.mcp-auth-prod.internal), secrets from Secrets Manager."""
    (definition,) = [d for d in resources(synth, "AWS::ECS::TaskDefinition").values()
                     if d["Properties"]["ContainerDefinitions"][0]["Name"] == "realm-sync"]
    container = definition["Properties"]["ContainerDefinitions"][0]
    assert container["Command"] == ["--server", "http://keycloak.mcp-auth-prod.internal:8080", "/realm/mcp-realm.json"]
    assert {s["Name"] for s in container["Secrets"]} == {"KEYCLOAK_ADMIN_CLIENT_SECRET"}
    assert set(env(container)) == {"MCP_RESOURCE_URL", "API_URL", "CIMD_ORIGIN", "AGENT_CALLBACK_PORT"}
    assert "RealmSyncCommand" in synth.template.to_json()["Outputs"]
    names = {s["Properties"]["Name"] for s in resources(synth, "AWS::ServiceDiscovery::Service").values()}
    assert {"keycloak", "egress"} <= names
    # Its only way anywhere: Keycloak's HTTP port, plus the AWS APIs it starts with.
    _, egress = group_rules(synth, synth.stack.realm_sync.security_group)
    keycloak = {"Fn::GetAtt": [logical_id(synth, synth.stack.keycloak.security_group), "GroupId"]}
    assert [(r["FromPort"], r["DestinationSecurityGroupId"]) for r in egress if r["FromPort"] != 443] == [(8080, keycloak)]
    assert all("DestinationSecurityGroupId" in r or "DestinationPrefixListId" in r for r in egress)


def group_id(synth: Synthesized, group) -> dict:
    return {"Fn::GetAtt": [logical_id(synth, group), "GroupId"]}


def every_rule(synth: Synthesized, direction: str) -> list[dict]:
    """Every rule of every security group, inline or separate, with the group it belongs to."""
    kind = {"ingress": "AWS::EC2::SecurityGroupIngress", "egress": "AWS::EC2::SecurityGroupEgress"}[direction]
    inline = {"ingress": "SecurityGroupIngress", "egress": "SecurityGroupEgress"}[direction]
    found = [r["Properties"] for r in resources(synth, kind).values()]
    for gid, group in resources(synth, "AWS::EC2::SecurityGroup").items():
        found += [{**r, "GroupId": {"Fn::GetAtt": [gid, "GroupId"]}} for r in group["Properties"].get(inline, [])]
    return found


def test_keycloaks_http_port_is_reached_by_the_alb_the_mcp_server_the_notes_api_and_realm_sync_only(
        synth: Synthesized):
    """Who may open a connection to Keycloak's HTTP port (the admin API is on it): the ALB (which
    routes no /admin path), the MCP server (JWKS, introspection, token exchange), the notes API
    (JWKS) and realm-sync. No other group has a rule towards it, in either direction."""
    stack = synth.stack
    keycloak = group_id(synth, stack.keycloak.security_group)
    ingress = [r for r in every_rule(synth, "ingress") if r["GroupId"] == keycloak and r["FromPort"] <= 8080 <= r["ToPort"]]
    allowed = [group_id(synth, g) for g in (stack.edge.security_group, stack.mcp.security_group,
                                            stack.api.security_group, stack.realm_sync.security_group)]
    assert sorted(map(str, (r["SourceSecurityGroupId"] for r in ingress))) == sorted(map(str, allowed))
    towards = [r for r in every_rule(synth, "egress")
               if r.get("DestinationSecurityGroupId") == keycloak and r["FromPort"] <= 8080 <= r["ToPort"]]
    assert sorted(map(str, (r["GroupId"] for r in towards))) == sorted(map(str, allowed))


def test_only_keycloak_and_realm_sync_hold_the_admin_client_secret(synth: Synthesized):
    """The admin API needs the bootstrap service-account's secret: only Keycloak (which creates
    the client) and realm-sync are handed it."""
    secret = logical_id(synth, synth.stack.keycloak.admin_client_secret)
    holders = sorted(container["Name"] for definition in resources(synth, "AWS::ECS::TaskDefinition").values()
                     for container in definition["Properties"]["ContainerDefinitions"]
                     if any(secret in json.dumps(s["ValueFrom"]) for s in container.get("Secrets", [])))
    assert holders == ["keycloak", "realm-sync"]


def test_the_mcp_server_reaches_keycloak_through_service_discovery_and_nothing_on_the_internet(synth: Synthesized):
    container = services(synth)["mcp-server"]["container"]
    settings = env(container)
    origin = "http://keycloak.mcp-auth-prod.internal:8080/realms/mcp"
    assert settings["MCP_JWKS_URL"] == f"{origin}/protocol/openid-connect/certs"
    assert settings["MCP_INTROSPECTION_URL"] == f"{origin}/protocol/openid-connect/token/introspect"
    # The issuer stays public: it is what tokens carry and what the introspection assertion names.
    assert settings["MCP_ISSUER"] == "https://auth.mcp.example.com/realms/mcp"
    names = {s["Properties"]["Name"] for s in resources(synth, "AWS::ServiceDiscovery::Service").values()}
    assert "keycloak" in names
    _, egress = group_rules(synth, synth.stack.mcp.security_group)
    assert egress
    for rule in egress:
        assert "CidrIp" not in rule, rule
        assert "CidrIpv6" not in rule, rule
    to_groups = {(r["FromPort"], json.dumps(r["DestinationSecurityGroupId"])) for r in egress
                 if "DestinationSecurityGroupId" in r}
    assert to_groups == {(8080, json.dumps(group_id(synth, synth.stack.keycloak.security_group))),
                         (8000, json.dumps(group_id(synth, synth.stack.api.security_group))),
                         (443, json.dumps(group_id(synth, synth.stack.network.endpoints)))}
    assert [r["DestinationPrefixListId"] for r in egress if "DestinationPrefixListId" in r] == ["pl-6da54004"]


def test_the_cimd_host_reaches_only_the_aws_apis_it_starts_with(synth: Synthesized):
    _, egress = group_rules(synth, synth.stack.cimd.security_group)
    assert egress
    for rule in egress:
        assert "CidrIp" not in rule, rule
        assert "CidrIpv6" not in rule, rule
        assert rule["FromPort"] == 443
    assert [r["DestinationSecurityGroupId"] for r in egress if "DestinationSecurityGroupId" in r] == [
        group_id(synth, synth.stack.network.endpoints)]


def test_no_group_but_the_egress_proxy_reaches_the_internet(synth: Synthesized):
    internet = [r for r in every_rule(synth, "egress") if r.get("CidrIp") == "0.0.0.0/0" or "CidrIpv6" in r]
    assert [r["GroupId"] for r in internet] == [group_id(synth, synth.stack.egress.security_group)]


def test_the_management_port_is_reachable_only_from_the_alb(synth: Synthesized):
    ingress, _ = group_rules(synth, synth.stack.keycloak.security_group)
    management = [r for r in ingress if r["FromPort"] == 9000]
    alb = {"Fn::GetAtt": [logical_id(synth, synth.stack.edge.security_group), "GroupId"]}
    assert [r["SourceSecurityGroupId"] for r in management] == [alb]


# --- operations ---------------------------------------------------------------------------------

def test_every_log_group_has_the_configured_retention(synth: Synthesized):
    groups = resources(synth, "AWS::Logs::LogGroup")
    assert len(groups) >= 7
    for name, group in groups.items():
        assert group["Properties"].get("RetentionInDays") == 30, name


def test_alarms_on_5xx_and_unhealthy_targets_notify_the_topic(synth: Synthesized):
    alarms = [a["Properties"] for a in resources(synth, "AWS::CloudWatch::Alarm").values()]
    metrics = sorted(a["MetricName"] for a in alarms)
    # One of each per target group: Keycloak, MCP server, CIMD host, notes API.
    assert metrics.count("UnHealthyHostCount") == 4
    assert metrics.count("HTTPCode_Target_5XX_Count") == 4
    assert "HTTPCode_ELB_5XX_Count" in metrics
    assert all(a["AlarmActions"] for a in alarms)
    one(synth, "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"})


def test_waf_rate_limits_the_token_and_registration_endpoints(synth: Synthesized):
    _, acl = one(synth, "AWS::WAFv2::WebACL")
    scoped = {r["Name"]: r["Statement"]["RateBasedStatement"]["ScopeDownStatement"]["ByteMatchStatement"]["SearchString"]
              for r in acl["Properties"]["Rules"]}
    assert scoped == {"token-endpoint": "/realms/mcp/protocol/openid-connect/token",
                      "client-registration": "/realms/mcp/clients-registrations/"}
    one(synth, "AWS::WAFv2::WebACLAssociation")


def test_waf_matches_the_path_keycloak_routes_not_the_bytes_sent(synth: Synthesized):
    """`/realms/mcp/./protocol/…`, `//realms/mcp/…`, `%2e` and `%2F` variants reach the same
    Keycloak endpoint (it decodes and normalizes before routing): each rule decodes, then
    normalizes the path (`//`, `.` and `..` segments), then lowercases, before it matches."""
    _, acl = one(synth, "AWS::WAFv2::WebACL")
    for rule in acl["Properties"]["Rules"]:
        match = rule["Statement"]["RateBasedStatement"]["ScopeDownStatement"]["ByteMatchStatement"]
        assert match["FieldToMatch"] == {"UriPath": {}}
        assert match["PositionalConstraint"] == "STARTS_WITH"
        steps = sorted(match["TextTransformations"], key=lambda t: t["Priority"])
        assert [t["Type"] for t in steps] == ["URL_DECODE", "NORMALIZE_PATH", "LOWERCASE"], rule["Name"]
        assert len({t["Priority"] for t in steps}) == 3
        assert match["SearchString"] == match["SearchString"].lower()  # compared after LOWERCASE
        assert rule["Action"] == {"Block": {}}
        assert rule["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"


def test_waf_is_optional():
    assert synthesized(waf=False).template.find_resources("AWS::WAFv2::WebACL") == {}


def test_tags_reach_the_resources(synth: Synthesized):
    tag = {"Key": "project", "Value": "mcp-auth-stack"}
    synth.template.has_resource_properties("AWS::ECS::Cluster", {"Tags": Match.array_with([tag])})


def test_the_mcp_server_introspects_with_its_own_key_from_an_operator_made_secret(synth: Synthesized):
    """Privileged tools see revocation in production too: the MCP server's private_key_jwt key comes
    from a Secrets Manager secret the operator made (never from the template or an image)."""
    (definition,) = [d for d in resources(synth, "AWS::ECS::TaskDefinition").values()
                     if d["Properties"]["ContainerDefinitions"][0]["Name"] == "mcp-server"]
    container = definition["Properties"]["ContainerDefinitions"][0]
    secrets = {s["Name"]: json.dumps(s["ValueFrom"]) for s in container["Secrets"]}
    assert set(secrets) == {"MCP_CLIENT_KEY_ID", "MCP_CLIENT_KEY_PEM"}
    assert all(synth.config.mcp_client_key_secret in value for value in secrets.values())
    assert secrets["MCP_CLIENT_KEY_ID"].endswith(':kid::"]]}')
    assert secrets["MCP_CLIENT_KEY_PEM"].endswith(':pem::"]]}')
    assert "MCP_INTROSPECT_PRIVILEGED" not in env(container)
    assert not [s for s in resources(synth, "AWS::SecretsManager::Secret").values()
                if "client key" in s["Properties"].get("Description", "")]


def test_unused_anonymous_registrations_are_reaped_on_a_schedule(synth: Synthesized):
    """realm-sync reap, every five minutes, as the RealmSync task with its security group."""
    (rule,) = resources(synth, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    (target,) = rule["Properties"]["Targets"]
    overrides = json.loads(target["Input"])["containerOverrides"]
    assert overrides == [{"name": "realm-sync", "command": [
        "reap", "--older-than", "3600", "--server", "http://keycloak.mcp-auth-prod.internal:8080", "/realm/mcp-realm.json"]}]
    network = target["EcsParameters"]["NetworkConfiguration"]["AwsVpcConfiguration"]
    assert network["SecurityGroups"] == [{"Fn::GetAtt": [logical_id(synth, synth.stack.realm_sync.security_group), "GroupId"]}]
    assert network["AssignPublicIp"] == "DISABLED"


# --- the notes API (token exchange's downstream) ----------------------------------------------

# What the API's PostgreSQL store reads (TOPOLOGY=ha's store; not in notes_api.config yet on this
# branch): the libpq URI without credentials, and user and password as ECS secrets.
API_DATABASE_ENV = {"API_DATABASE_URL"}
API_DATABASE_SECRETS = {"API_DATABASE_USER", "API_DATABASE_PASSWORD"}


def test_the_notes_api_runs_its_own_image_with_its_public_url_as_audience(synth: Synthesized):
    from notes_api.config import Settings as ApiSettings

    api = services(synth)["api"]
    settings = env(api["container"])
    known = {f"API_{name.upper()}" for name in ApiSettings.model_fields}
    # Every variable and task secret the template sets is one the API reads (its Settings).
    assert set(settings) | API_DATABASE_SECRETS <= known
    # RFC 8707 §2: its tokens' `aud` is its public URL, the realm's ${API_URL} (its client id).
    assert settings["API_URL"] == "https://api.mcp.example.com"
    assert settings["API_ISSUER"] == "https://auth.mcp.example.com/realms/mcp"
    assert settings["API_JWKS_URL"] == "http://keycloak.mcp-auth-prod.internal:8080/realms/mcp/protocol/openid-connect/certs"
    assert api["container"]["ReadonlyRootFilesystem"] is True
    assert api["service"]["DesiredCount"] >= 2
    # Built from the sandbox's own Dockerfile with services/ as the context, as compose does.
    (image,) = [i for i in synth.assets["dockerImages"].values() if i["source"].get("dockerFile") == "api/Dockerfile"]
    assert image["source"]["dockerBuildArgs"] == {"PYTHON_IMAGE": f"python:3.13.5-slim-trixie@{'sha256:' + '3' * 64}"}
    # The realm's placeholder is the same URL in the tasks that fill it.
    assert env(services(synth)["keycloak"]["container"])["API_URL"] == settings["API_URL"]
    (sync,) = [d["Properties"]["ContainerDefinitions"][0] for d in resources(synth, "AWS::ECS::TaskDefinition").values()
               if d["Properties"]["ContainerDefinitions"][0]["Name"] == "realm-sync"]
    assert env(sync)["API_URL"] == settings["API_URL"]
    assert synth.template.to_json()["Outputs"]["NotesApiUrl"]["Value"] == "https://api.mcp.example.com"


def test_the_mcp_server_calls_the_notes_api_through_service_discovery_for_its_public_audience(synth: Synthesized):
    settings = env(services(synth)["mcp-server"]["container"])
    # Where it calls (Cloud Map, no internet) and what it exchanges for (RFC 8693 §2.1 audience).
    assert settings["MCP_NOTES_API_URL"] == "http://api.mcp-auth-prod.internal:8000"
    assert settings["MCP_NOTES_API_AUDIENCE"] == "https://api.mcp.example.com"
    names = {s["Properties"]["Name"] for s in resources(synth, "AWS::ServiceDiscovery::Service").values()}
    assert "api" in names
    # The exchange is signed with the MCP server's own key (private_key_jwt), as introspection is.
    assert {"MCP_CLIENT_KEY_ID", "MCP_CLIENT_KEY_PEM"} <= {s["Name"] for s in services(synth)["mcp-server"]["container"]["Secrets"]}


def test_the_notes_api_is_reached_by_the_alb_and_the_mcp_server_only(synth: Synthesized):
    stack = synth.stack
    api = group_id(synth, stack.api.security_group)
    ingress = [r for r in every_rule(synth, "ingress") if r["GroupId"] == api]
    assert sorted((r["FromPort"], str(r["SourceSecurityGroupId"])) for r in ingress) == sorted(
        (8000, str(group_id(synth, g))) for g in (stack.edge.security_group, stack.mcp.security_group))


def test_the_notes_api_reaches_keycloak_its_database_and_nothing_on_the_internet(synth: Synthesized):
    stack = synth.stack
    _, egress = group_rules(synth, stack.api.security_group)
    assert egress
    for rule in egress:
        assert "CidrIp" not in rule, rule
        assert "CidrIpv6" not in rule, rule
    to_groups = {(r["FromPort"], json.dumps(r["DestinationSecurityGroupId"])) for r in egress
                 if "DestinationSecurityGroupId" in r}
    assert to_groups == {(8080, json.dumps(group_id(synth, stack.keycloak.security_group))),
                         (5433, json.dumps(group_id(synth, stack.api_database.security_group))),
                         (443, json.dumps(group_id(synth, stack.network.endpoints)))}
    assert [r["DestinationPrefixListId"] for r in egress if "DestinationPrefixListId" in r] == ["pl-6da54004"]


def test_the_notes_api_has_its_own_database_that_accepts_only_it(synth: Synthesized):
    stack = synth.stack
    _, cluster = one(synth, "AWS::RDS::DBCluster", {"DBClusterIdentifier": "mcp-auth-prod-notes"})
    properties = cluster["Properties"]
    assert properties["Engine"] == "aurora-postgresql"
    assert properties["StorageEncrypted"] is True
    assert properties["DatabaseName"] == "notes"
    assert properties["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 2}
    assert cluster["DeletionPolicy"] == "Snapshot"
    assert properties["DeletionProtection"] is True
    # Writer only (docs/decisions.md): one instance in this cluster.
    cluster_id = logical_id(synth, stack.api_database.cluster)
    instances = [i for i in resources(synth, "AWS::RDS::DBInstance").values()
                 if i["Properties"]["DBClusterIdentifier"] == {"Ref": cluster_id}]
    assert len(instances) == 1
    ingress, _ = group_rules(synth, stack.api_database.security_group)
    assert [(r["FromPort"], r["SourceSecurityGroupId"]) for r in ingress] == [
        (5433, group_id(synth, stack.api.security_group))]
    # The API is told this cluster's endpoint (a CloudFormation reference until deploy), TLS required.
    url = json.dumps(env(services(synth)["api"]["container"])["API_DATABASE_URL"])
    assert '"postgresql://"' in url
    assert json.dumps({"Fn::GetAtt": [cluster_id, "Endpoint.Address"]}) in url
    assert ':5433/notes?sslmode=require"' in url


def test_each_database_secret_goes_to_its_own_service_only(synth: Synthesized):
    stack = synth.stack

    def holders(secret) -> list[str]:
        secret_id = logical_id(synth, secret)
        return sorted({container["Name"] for definition in resources(synth, "AWS::ECS::TaskDefinition").values()
                       for container in definition["Properties"]["ContainerDefinitions"]
                       if any(secret_id in json.dumps(s["ValueFrom"]) for s in container.get("Secrets", []))})

    assert holders(stack.api_database.secret) == ["api"]
    assert holders(stack.database.secret) == ["keycloak", "realm-import"]
    api = services(synth)["api"]["container"]
    assert {s["Name"] for s in api["Secrets"]} == API_DATABASE_SECRETS
