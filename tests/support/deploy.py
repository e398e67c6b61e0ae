"""Synthesizing the AWS template (deploy/aws) offline, once per set of parameters per session
(jsii runs the CDK on Node; tests/conftest.py points it at the suite's Node 22)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from aws_cdk.assertions import Template
from mcp_deploy.app import build, stack_of
from mcp_deploy.config import BASE_IMAGES, DeployConfig


def deploy_config(state: Path, **overrides: object) -> DeployConfig:
    values: dict[str, object] = {
        "domain": "mcp.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ", "hosted_zone_name": "example.com",
        "s3_prefix_list_id": "pl-6da54004", "cimd_state_dir": str(state), "region": "eu-west-1",
        "alarm_email": "oncall@example.com", "mcp_client_key_secret": "mcp-server-client-key",
        # Digests of the shape an operator pins (docker buildx imagetools inspect): synthesis only
        # hashes the build contexts, it never pulls them.
        "base_image_digests": {name: "sha256:" + f"{i}" * 64 for i, name in enumerate(BASE_IMAGES, 1)},
    }
    return DeployConfig(**{**values, **overrides})  # type: ignore[arg-type]


def rendered_state() -> Path:
    """A state directory with public CIMD documents rendered for the test domain (as an operator would)."""
    state = Path(tempfile.mkdtemp(prefix="deploy-state-"))
    public = state / "cimd-public" / "agents" / "demo"
    public.mkdir(parents=True)
    (public / "metadata.json").write_text(json.dumps({"client_id": "https://cimd.mcp.example.com/agents/demo/metadata.json"}))
    (public / "jwks.json").write_text(json.dumps({"keys": []}))
    return state


@dataclass
class Synthesized:
    config: DeployConfig
    app: object
    stack: object
    template: Template
    outdir: Path

    @property
    def template_file(self) -> Path:
        return self.outdir / f"{self.config.stack_name}.template.json"

    @property
    def assets(self) -> dict:
        return json.loads((self.outdir / f"{self.config.stack_name}.assets.json").read_text())


@cache
def synthesized(**overrides: object) -> Synthesized:
    """Cached per overrides, so mapping settings come as tuples of pairs (hashable)."""
    settings = {k: dict(v) if isinstance(v, tuple) else v for k, v in overrides.items()}  # type: ignore[call-overload]
    config = deploy_config(rendered_state(), **settings)
    outdir = Path(tempfile.mkdtemp(prefix="cdk-out-"))
    app = build(config, outdir=str(outdir))
    stack = stack_of(app)
    template = Template.from_stack(stack)
    app.synth()  # type: ignore[attr-defined]
    return Synthesized(config, app, stack, template, outdir)
