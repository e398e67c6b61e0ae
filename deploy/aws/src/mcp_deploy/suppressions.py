"""cdk-nag AwsSolutions findings this design accepts, each with its reason, in code and reviewed
like code. Each names the component's handle it applies to (no construct paths as strings).
Anything else cdk-nag finds fails the tests (tests/deploy/test_checks.py)."""

from __future__ import annotations

from cdk_nag import NagPackSuppression, NagSuppressions

from .stack import McpAuthStack

ROTATION = (
    "Rotated by the documented procedure (docs/production.md, 'Secrets'), not by a rotation Lambda: "
    "Keycloak and the notes API read these at start, so a rotation is a secret update plus a rolling restart of "
    "the service."
)


def suppress(stack: McpAuthStack) -> None:
    NagSuppressions.add_resource_suppressions(stack.edge.security_group, [NagPackSuppression(
        id="AwsSolutions-EC23",
        reason="The internet-facing ALB accepts 443 (and 80, answered only with a redirect to 443) from anywhere; "
               "the optional WAF rate-limits the token and registration endpoints.",
    )])
    with_environment = [stack.egress.task_definition, stack.keycloak.task_definition, stack.keycloak.import_task,
                        stack.mcp.task_definition, stack.realm_sync.task_definition, stack.api.task_definition]
    for task in with_environment:
        NagSuppressions.add_resource_suppressions(task, [NagPackSuppression(
            id="AwsSolutions-ECS2",
            reason="Plain environment variables carry only non-secret configuration (URLs, names, ports); every "
                   "secret (database, bootstrap admin, client secrets) is an ECS secret from Secrets Manager.",
        )])
    for task in [*with_environment, stack.cimd.task_definition]:
        NagSuppressions.add_resource_suppressions(task, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason="CDK's generated execution-role policy: ecr:GetAuthorizationToken has no resource-level "
                   "permissions (AWS requires Resource '*'); the other statements name their log group, "
                   "repository and secrets.",
            applies_to=["Resource::*"],
        )], apply_to_children=True)
    cluster_id = stack.get_logical_id(stack.platform.cluster.node.default_child)  # type: ignore[arg-type]
    NagSuppressions.add_resource_suppressions(stack.realm_sync.task_definition, [NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="CDK's generated role for the registration reaper's schedule (EventBridge runs the RealmSync task): "
               "ecs:TagResource on the tasks it starts, whose ids cannot be known in advance, scoped to this cluster.",
        applies_to=[{"regex": f"/^Resource::arn:<AWS::Partition>:ecs:[a-z0-9-]+:\\*:task\\/<{cluster_id}>\\/\\*$/"}],
    )], apply_to_children=True)
    NagSuppressions.add_resource_suppressions(stack.operations.access_logs, [NagPackSuppression(
        id="AwsSolutions-S1",
        reason="This bucket holds the ALB's access logs; logging access to the log bucket itself would recurse.",
    )])
    for secret in (stack.keycloak.admin_secret, stack.keycloak.admin_client_secret):
        NagSuppressions.add_resource_suppressions(secret, [NagPackSuppression(id="AwsSolutions-SMG4", reason=ROTATION)])
    for database in (stack.database, stack.api_database):
        NagSuppressions.add_resource_suppressions(database.cluster, [NagPackSuppression(
            id="AwsSolutions-SMG4", reason=ROTATION)], apply_to_children=True)
