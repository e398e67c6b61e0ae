"""Operations: the ALB's access logs, AWS WAF in front of it (per-IP rate limits on the token and
registration endpoints), and alarms on 5xx and unhealthy targets to an SNS topic."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from ..config import DeployConfig
from .edge import Edge
from .platform import Platform

# What a rate rule matches is the path Keycloak will route, not the bytes a client sent: Keycloak
# (Vert.x) decodes %-escapes and drops `.` segments and repeated slashes before routing, so
# `/realms/mcp/./protocol/…`, `//realms/mcp/…` or `%2e` reach the same endpoint and must be
# counted the same. WAF applies these in order before the match (lower priority first).
PATH_TRANSFORMATIONS = ("URL_DECODE", "NORMALIZE_PATH", "LOWERCASE")


def rate_limited_paths(realm: str) -> dict[str, str]:
    return {"token-endpoint": f"/realms/{realm}/protocol/openid-connect/token",
            "client-registration": f"/realms/{realm}/clients-registrations/"}


class Operations(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, platform: Platform,
                 edge: Edge) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = s3.Bucket(
            self, "AccessLogs", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(config.log_retention_days))],
        )
        edge.alb.log_access_logs(self.access_logs, prefix="alb")
        self.web_acl = self._waf(config, edge) if config.waf else None
        self.topic = sns.Topic(self, "Alarms", master_key=platform.key, enforce_ssl=True,
                               display_name="MCP auth stack alarms")
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        action = cloudwatch_actions.SnsAction(self.topic)
        at_least = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        quiet = cloudwatch.TreatMissingData.NOT_BREACHING
        metrics = {"Alb5xx": edge.alb.metrics.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=Duration.minutes(5))}
        for name, group in edge.target_groups.items():
            metrics[f"{name}Target5xx"] = group.metrics.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT,
                                                                         period=Duration.minutes(5))
            unhealthy = cloudwatch.Alarm(self, f"{name}Unhealthy", metric=group.metrics.unhealthy_host_count(
                period=Duration.minutes(1)), threshold=1, evaluation_periods=3, comparison_operator=at_least,
                treat_missing_data=quiet)
            unhealthy.add_alarm_action(action)
        for name, metric in metrics.items():
            alarm = cloudwatch.Alarm(self, name, metric=metric, threshold=10, evaluation_periods=1,
                                     comparison_operator=at_least, treat_missing_data=quiet)
            alarm.add_alarm_action(action)

    def _waf(self, config: DeployConfig, edge: Edge) -> wafv2.CfnWebACL:
        prefix = Stack.of(self).stack_name

        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=f"{prefix}-{name}", sampled_requests_enabled=True)

        def rate_rule(name: str, priority: int, path: str) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name, priority=priority, action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    limit=config.waf_requests_per_5_minutes, aggregate_key_type="IP",
                    scope_down_statement=wafv2.CfnWebACL.StatementProperty(
                        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                            positional_constraint="STARTS_WITH", search_string=path,
                            text_transformations=[
                                wafv2.CfnWebACL.TextTransformationProperty(priority=i, type=t)
                                for i, t in enumerate(PATH_TRANSFORMATIONS)],
                        )),
                )),
                visibility_config=visibility(name),
            )

        acl = wafv2.CfnWebACL(
            self, "WebAcl", scope="REGIONAL", default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility("web-acl"),
            rules=[rate_rule(name, i, path) for i, (name, path) in enumerate(rate_limited_paths(config.realm).items(), 1)],
        )
        wafv2.CfnWebACLAssociation(self, "WebAclAlb", resource_arn=edge.alb.load_balancer_arn, web_acl_arn=acl.attr_arn)
        return acl
