"""cdk-nag AwsSolutions findings this design accepts, each with its reason, in code and reviewed
like code. Anything else cdk-nag finds fails the tests (tests/deploy/test_checks.py)."""

from __future__ import annotations

from cdk_nag import NagPackSuppression, NagSuppressions

from .stack import McpAuthStack

ROTATION = (
    "Rotated by the documented procedure (docs/production.md, 'Secrets'), not by a rotation Lambda: "
    "Keycloak reads these at start, so a rotation is a secret update plus a rolling restart of the service."
)


def suppress(stack: McpAuthStack) -> None:
    NagSuppressions.add_resource_suppressions(stack.alb_sg, [NagPackSuppression(
        id="AwsSolutions-EC23",
        reason="The internet-facing ALB accepts 443 (and 80, answered only with a redirect to 443) from anywhere; "
               "the optional WAF rate-limits the token and registration endpoints.",
    )])
    for task in (stack.node.find_child(name) for name in
                 ("EgressTask", "KeycloakTask", "McpServerTask", "RealmImportTask", "RealmSyncTask")):
        NagSuppressions.add_resource_suppressions(task, [NagPackSuppression(
            id="AwsSolutions-ECS2",
            reason="Plain environment variables carry only non-secret configuration (URLs, names, ports); every "
                   "secret (database, bootstrap admin, client secrets) is an ECS secret from Secrets Manager.",
        )])
    for task in (stack.node.find_child(name) for name in
                 ("EgressTask", "KeycloakTask", "McpServerTask", "RealmImportTask", "RealmSyncTask", "CimdHostTask")):
        NagSuppressions.add_resource_suppressions(task, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            reason="CDK's generated execution-role policy: ecr:GetAuthorizationToken has no resource-level "
                   "permissions (AWS requires Resource '*'); the other statements name their log group, "
                   "repository and secrets.",
            applies_to=["Resource::*"],
        )], apply_to_children=True)
    NagSuppressions.add_resource_suppressions(stack.realm_sync, [NagPackSuppression(
        id="AwsSolutions-IAM5",
        reason="CDK's generated role for the registration reaper's schedule (EventBridge runs the RealmSync task): "
               "ecs:TagResource on the tasks it starts, whose ids cannot be known in advance, scoped to this cluster.",
        applies_to=[{"regex": "/^Resource::arn:<AWS::Partition>:ecs:[a-z0-9-]+:\\*:task\\/<ClusterEB0386A7>\\/\\*$/"}],
    )], apply_to_children=True)
    NagSuppressions.add_resource_suppressions(stack.node.find_child("AccessLogs"), [NagPackSuppression(
        id="AwsSolutions-S1",
        reason="This bucket holds the ALB's access logs; logging access to the log bucket itself would recurse.",
    )])
    for name in ("KeycloakAdminPassword", "KeycloakAdminClientSecret"):
        NagSuppressions.add_resource_suppressions(stack.node.find_child(name), [
            NagPackSuppression(id="AwsSolutions-SMG4", reason=ROTATION)])
    NagSuppressions.add_resource_suppressions(stack.database, [NagPackSuppression(
        id="AwsSolutions-SMG4", reason=ROTATION)], apply_to_children=True)
