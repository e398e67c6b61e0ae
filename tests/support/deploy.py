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
from mcp_deploy.config import DeployConfig


def deploy_config(state: Path, **overrides: object) -> DeployConfig:
    values: dict[str, object] = {
        "domain": "mcp.example.com", "hosted_zone_id": "Z0123456789ABCDEFGHIJ", "hosted_zone_name": "example.com",
        "s3_prefix_list_id": "pl-6da54004", "cimd_state_dir": str(state), "region": "eu-west-1",
        "alarm_email": "oncall@example.com", "mcp_client_key_secret": "mcp-server-client-key",
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
        return self.outdir / "McpAuthStack.template.json"

    @property
    def assets(self) -> dict:
        return json.loads((self.outdir / "McpAuthStack.assets.json").read_text())


@cache
def synthesized(**overrides: object) -> Synthesized:
    config = deploy_config(rendered_state(), **overrides)
    outdir = Path(tempfile.mkdtemp(prefix="cdk-out-"))
    app = build(config, outdir=str(outdir))
    stack = stack_of(app)
    template = Template.from_stack(stack)
    app.synth()  # type: ignore[attr-defined]
    return Synthesized(config, app, stack, template, outdir)
