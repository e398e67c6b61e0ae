"""The template against AWS's rule packs: cdk-nag's AwsSolutions (no unsuppressed finding, every
suppression with its reason) and cfn-lint; and the parameters' own validation."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Annotations, Match
from mcp_deploy.components.cimd_host import cimd_build_context
from mcp_deploy.config import DeployConfig, pinned_versions

from tests.support.deploy import Synthesized, deploy_config, rendered_state, synthesized

pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def synth() -> Synthesized:
    return synthesized()


def test_cdk_nag_aws_solutions_finds_nothing_unsuppressed(synth: Synthesized):
    annotations = Annotations.from_stack(synth.stack)
    findings = [*annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")),
                *annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*"))]
    assert [f"{f.id}: {str(f.entry.data)[:100]}" for f in findings] == []


def test_every_suppression_carries_its_reason(synth: Synthesized):
    suppressed = 0
    for resource in synth.template.to_json()["Resources"].values():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            suppressed += 1
            assert len(rule["reason"]) > 40, rule
    assert suppressed > 0


def test_the_nag_report_lists_every_rule_as_compliant_or_suppressed(synth: Synthesized):
    (report,) = synth.outdir.glob(f"AwsSolutions-*{synth.config.stack_name}-NagReport.csv")
    rows = list(csv.DictReader(report.read_text().splitlines()))
    assert len(rows) > 100
    assert {row["Compliance"] for row in rows} <= {"Compliant", "Suppressed", "UNKNOWN"}
    assert all(row["Exception Reason"] != "N/A" for row in rows if row["Compliance"] == "Suppressed")


def test_cfn_lint_passes(synth: Synthesized):
    cfn_lint = Path(sys.executable).with_name("cfn-lint")  # pinned in the dev group (uv.lock)
    result = subprocess.run([str(cfn_lint), str(synth.template_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_images_are_the_sandboxs_own_dockerfiles(synth: Synthesized):
    images = list(synth.assets["dockerImages"].values())
    # The sandbox's pins, each by the digest the config gives it (tests/deploy/test_images.py).
    versions = {name: f"{ref}@{synth.config.base_image_digests[name]}" for name, ref in pinned_versions().items()
                if name in synth.config.base_image_digests}
    args = sorted(json.dumps(i["source"].get("dockerBuildArgs", {}), sort_keys=True) for i in images)
    assert args == sorted(json.dumps(a, sort_keys=True) for a in [
        {"KEYCLOAK_IMAGE": versions["KEYCLOAK_IMAGE"], "KC_DB": "postgres", "PYTHON_IMAGE": versions["PYTHON_IMAGE"],
         "REALM_PROFILE": "production"},
        {"PYTHON_IMAGE": versions["PYTHON_IMAGE"]},  # egress
        {"PYTHON_IMAGE": versions["PYTHON_IMAGE"]},  # mcp-server
        {"PYTHON_IMAGE": versions["PYTHON_IMAGE"]},  # api
        {"PYTHON_IMAGE": versions["PYTHON_IMAGE"], "REALM_PROFILE": "production"},  # realm-sync
        {"CADDY_IMAGE": versions["CADDY_IMAGE"]},
    ])
    for image in images:  # each staged asset holds the same Dockerfile as the sandbox builds
        dockerfile = (synth.outdir / image["source"]["directory"] / image["source"].get("dockerFile", "Dockerfile")).read_text()
        sandbox = [p for p in Path("services").glob("*/Dockerfile")] + [Path("cimd-host/Dockerfile")]
        assert any(dockerfile == (Path(__file__).resolve().parents[2] / p).read_text() for p in sandbox)


def test_the_cimd_image_ships_public_documents_only(tmp_path: Path):
    state = rendered_state()
    context = cimd_build_context(state / "cimd-public")
    assert sorted(p.name for p in (context / "public").rglob("*.json")) == ["jwks.json", "metadata.json"]
    (state / "cimd-public" / "agents" / "demo" / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(ValueError, match="only public JSON documents"):
        cimd_build_context(state / "cimd-public")
    (state / "cimd-public" / "agents" / "demo" / "key.pem").unlink()
    (state / "cimd-public" / "agents" / "demo" / "leak.json").write_text('{"d": "-----BEGIN PRIVATE KEY-----"}')
    with pytest.raises(ValueError, match="only public JSON documents"):
        cimd_build_context(state / "cimd-public")
    (state / "cimd-public" / "agents" / "demo" / "leak.json").unlink()
    with pytest.raises(ValueError, match="render the CIMD documents first"):
        cimd_build_context(tmp_path / "missing")


@pytest.mark.parametrize(("document", "members"), [
    ({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"}]}, "['d']"),
    ({"keys": [{"kty": "RSA", "n": "AA", "e": "AQAB", "d": "AA", "p": "AA", "q": "AA"}]}, "['d', 'p', 'q']"),
    ({"keys": [{"kty": "oct", "k": "AA"}]}, "['k']"),
    ({"client_id": "https://cimd.mcp.example.com/agents/demo/metadata.json",
      "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA", "d": "AA"}]}}, "['d']"),
])
def test_the_cimd_image_refuses_private_jwks(document: dict, members: str):
    """A JWK's private members (RFC 7518 §6.2.2, §6.3.2, §6.4.1) are a private key as surely as a
    PEM block: a JWKS or a metadata document's inline `jwks` that carries one stops the build."""
    state = rendered_state()
    leak = state / "cimd-public" / "agents" / "demo" / "jwks.json"
    leak.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=re.escape(f"a JWK with private members {members}")):
        cimd_build_context(state / "cimd-public")


def test_the_cimd_image_ships_public_jwks_and_refuses_what_is_not_json():
    state = rendered_state()
    public = {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "k1", "use": "sig"}]}
    (state / "cimd-public" / "agents" / "demo" / "jwks.json").write_text(json.dumps(public))
    context = cimd_build_context(state / "cimd-public")
    assert json.loads((context / "public" / "agents" / "demo" / "jwks.json").read_text()) == public
    (state / "cimd-public" / "agents" / "demo" / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON document"):
        cimd_build_context(state / "cimd-public")


@pytest.mark.parametrize(("change", "message"), [
    ({"keycloak_tasks": 1}, "keycloak_tasks must be >= 2"),
    ({"mcp_min_tasks": 1}, "mcp_min_tasks"),
    ({"mcp_min_tasks": 4, "mcp_max_tasks": 3}, "mcp_min_tasks"),
    ({"realm": "master"}, "realm"),
    ({"domain": "mcp.other.org"}, "not in the hosted zone"),
    ({"domain": "not a name"}, "DNS name"),
    ({"cors_allowed_origins": "*"}, "never allowed"),
    ({"s3_prefix_list_id": "sg-123"}, "prefix list"),
    ({"certificate_arn": "arn:aws:iam::1:role/x"}, "ACM certificate"),
])
def test_invalid_parameters_are_refused_with_the_reason(change: dict, message: str, tmp_path: Path):
    with pytest.raises(ValueError, match=message):
        deploy_config(tmp_path, **change)


def test_the_example_config_is_valid_and_unknown_settings_are_refused(tmp_path: Path):
    example = Path(__file__).resolve().parents[2] / "deploy" / "aws" / "config.example.toml"
    assert DeployConfig.load(example).domain == "mcp.example.com"
    typo = tmp_path / "config.toml"
    typo.write_text(example.read_text() + 'keycloak_task = 3\n')
    with pytest.raises(ValueError, match="unknown settings"):
        DeployConfig.load(typo)
