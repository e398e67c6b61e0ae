"""The images a deployment runs (docs/production.md, "Images"): built on base images pinned by
digest, or given by digest; the sandbox's local stand-ins (built here when no registry answers,
tagged with the upstream names and labelled io.mcp-sandbox.local-equivalent) refused unless the
config allows them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk.assertions import Template
from mcp_deploy.app import build, stack_of
from mcp_deploy.config import BASE_IMAGES, ROOT, pinned_versions
from mcp_deploy.images import STAND_IN_LABEL, base_image_args

from tests.support.deploy import deploy_config, rendered_state, synthesized

pytestmark = pytest.mark.deploy

DIGEST = "sha256:" + "ab" * 32
ECR = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/mcp/mcp-server@{DIGEST}"


def stand_ins(reference: str) -> dict[str, str] | None:
    """This machine's Docker as the sandbox leaves it without a registry: every base image a
    stand-in under the upstream name (compose/base-images/compose.yaml)."""
    return {STAND_IN_LABEL: "true"}


def upstream(reference: str) -> dict[str, str] | None:
    return {"org.opencontainers.image.source": "upstream"}


def test_the_stand_ins_label_is_the_one_the_sandbox_sets():
    compose = (ROOT / "compose" / "base-images" / "compose.yaml").read_text()
    assert f"labels: {{{STAND_IN_LABEL}: \"true\"}}" in compose


def test_builds_use_the_base_images_by_digest():
    synth = synthesized()
    versions = pinned_versions()
    pins = synth.config.base_image_digests
    for image in synth.assets["dockerImages"].values():
        for name, value in image["source"].get("dockerBuildArgs", {}).items():
            if name in BASE_IMAGES:
                assert value == f"{versions[name]}@{pins[name]}"


def test_a_local_stand_in_is_refused_when_its_base_is_not_pinned(tmp_path: Path):
    config = deploy_config(tmp_path, base_image_digests={})
    with pytest.raises(ValueError, match=f"local stand-in \\(label {STAND_IN_LABEL}\\)"):
        base_image_args(config, pinned_versions(), stand_ins)


def test_an_unpinned_upstream_base_is_refused_too(tmp_path: Path):
    config = deploy_config(tmp_path, base_image_digests={})
    with pytest.raises(ValueError, match=r"KEYCLOAK_IMAGE .* is not pinned by digest"):
        base_image_args(config, pinned_versions(), upstream)
    with pytest.raises(ValueError, match="is not pinned by digest"):
        base_image_args(config, pinned_versions(), lambda reference: None)  # no such image here


def test_a_pinned_base_never_resolves_to_the_stand_in(tmp_path: Path):
    """`name:tag@digest`: Docker builds on that digest only, which no local stand-in has."""
    pins = {name: DIGEST for name in BASE_IMAGES}
    args = base_image_args(deploy_config(tmp_path, base_image_digests=pins), pinned_versions(), stand_ins)
    assert all(value.endswith(f"@{DIGEST}") for value in args.values())


def test_stand_ins_are_deployed_only_when_the_config_allows_them():
    config = deploy_config(rendered_state(), base_image_digests={}, allow_local_base_images=True)
    args = base_image_args(config, pinned_versions(), stand_ins)
    assert args == {name: pinned_versions()[name] for name in BASE_IMAGES}
    stack = stack_of(build(config, labels_of=stand_ins))
    from aws_cdk.assertions import Annotations, Match
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp(".*allow_local_base_images.*"))
    assert warnings


def test_a_stack_with_a_stand_in_and_no_pin_does_not_synthesize():
    config = deploy_config(rendered_state(), base_image_digests={})
    with pytest.raises(ValueError, match="local stand-in"):
        build(config, labels_of=stand_ins)


def test_an_image_given_by_digest_is_deployed_by_that_digest_and_not_built():
    synth = synthesized(images=(("mcp-server", ECR),))
    template = synth.template.to_json()
    (definition,) = [d for d in template["Resources"].values() if d["Type"] == "AWS::ECS::TaskDefinition"
                     and d["Properties"]["ContainerDefinitions"][0]["Name"] == "mcp-server"]
    image = json.dumps(definition["Properties"]["ContainerDefinitions"][0]["Image"])
    assert "123456789012.dkr.ecr.eu-west-1." in image
    assert f"mcp/mcp-server@{DIGEST}" in image
    # Not built: no asset carries the MCP server's Dockerfile any more.
    dockerfile = (ROOT / "services" / "mcp-server" / "Dockerfile").read_text()
    built = [(synth.outdir / i["source"]["directory"] / i["source"].get("dockerFile", "Dockerfile")).read_text()
             for i in synth.assets["dockerImages"].values()]
    assert dockerfile not in built
    # Its execution role may pull from that repository.
    policies = json.dumps(Template.from_stack(synth.stack).find_resources("AWS::IAM::Policy"))
    assert "repository/mcp/mcp-server" in policies


@pytest.mark.parametrize(("change", "message"), [
    ({"base_image_digests": {"KEYCLOAK_IMAGE": "latest"}}, "must be sha256:"),
    ({"base_image_digests": {"NODE_IMAGE": DIGEST}}, "unknown base image"),
    ({"images": {"mcp-server": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mcp/mcp-server:1.0"}}, "by digest"),
    ({"images": {"mcp-server": f"docker.io/library/mcp-server@{DIGEST}"}}, "ECR image by digest"),
    ({"images": {"database": ECR}}, "unknown service"),
])
def test_image_settings_that_are_not_pins_are_refused(change: dict, message: str, tmp_path: Path):
    with pytest.raises(ValueError, match=message):
        deploy_config(tmp_path, **change)


def test_no_dockerfile_installs_anything_unpinned():
    """What the images install is pinned by hash: Python packages from lockfiles with hashes
    (pip --require-hashes), Go modules by go.sum; nothing is piped from a URL into a shell."""
    for dockerfile in [*ROOT.glob("services/*/Dockerfile"), ROOT / "cimd-host" / "Dockerfile"]:
        text = dockerfile.read_text()
        for line in re.findall(r"pip install[^\n]*", text):
            assert "--require-hashes" in line, (dockerfile, line)
        assert not re.search(r"(curl|wget)[^\n|]*\|\s*(sh|bash)", text), dockerfile
        assert not re.search(r"\buv\b[^\n]*install", text) or "--require-hashes" in text, dockerfile
    if (ROOT / "services" / "egress" / "Dockerfile").exists():
        assert "GOFLAGS=-mod=readonly" in (ROOT / "services" / "egress" / "Dockerfile").read_text()


def test_uv_is_installed_by_hash():
    """compose/scripts/ensure-uv.sh, the only place uv is installed: pip with --require-hashes."""
    script = (ROOT / "compose" / "scripts" / "ensure-uv.sh").read_text()
    assert "--require-hashes" in script
    requirement = (ROOT / "compose" / "scripts" / "uv-requirements.txt").read_text()
    lines = [line for line in requirement.replace("\\\n", " ").splitlines() if line and not line.startswith("#")]
    (line,) = lines
    version = re.search(r"^UV_VERSION=(\S+)$", script, re.M)
    assert version
    assert line.split()[0] == f"uv=={version.group(1)}"
    hashes = line.split()[1:]
    assert hashes
    assert all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", h) for h in hashes)
