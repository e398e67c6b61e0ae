"""Build the CDK app (one stack per stage config) with cdk-nag's AwsSolutions checks applied."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from .config import DeployConfig
from .images import LabelReader, docker_labels
from .stack import McpAuthStack
from .suppressions import suppress


def build(*configs: DeployConfig | Path, outdir: str | None = None, labels_of: LabelReader = docker_labels) -> cdk.App:
    """One stack per config, named after its stage (`mcp-auth-<stage>`); several stages may share
    an app, an account and a region."""
    app = cdk.App(outdir=outdir)
    for config in configs:
        if isinstance(config, Path):
            config = DeployConfig.load(config)
        env = cdk.Environment(account=config.account, region=config.region)
        stack = McpAuthStack(app, config.stack_name, config=config, env=env, labels_of=labels_of,
                             description=f"MCP auth stack ({config.stage}): Keycloak, MCP server and CIMD host "
                                         "on ECS Fargate behind an ALB")
        suppress(stack)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app


def stacks_of(app: cdk.App) -> list[McpAuthStack]:
    return [c for c in app.node.children if isinstance(c, McpAuthStack)]


def stack_of(app: cdk.App) -> McpAuthStack:
    (stack,) = stacks_of(app)
    return stack
