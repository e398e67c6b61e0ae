"""Build the CDK app (one stack) with cdk-nag's AwsSolutions checks applied."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from .config import DeployConfig
from .stack import McpAuthStack
from .suppressions import suppress


def build(config: DeployConfig | Path, *, outdir: str | None = None) -> cdk.App:
    if isinstance(config, Path):
        config = DeployConfig.load(config)
    app = cdk.App(outdir=outdir)
    env = cdk.Environment(account=config.account, region=config.region)
    stack = McpAuthStack(app, "McpAuthStack", config=config, env=env,
                         description="MCP auth stack: Keycloak, MCP server and CIMD host on ECS Fargate behind an ALB")
    suppress(stack)
    cdk.Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app


def stack_of(app: cdk.App) -> McpAuthStack:
    (stack,) = [c for c in app.node.children if isinstance(c, McpAuthStack)]
    return stack
