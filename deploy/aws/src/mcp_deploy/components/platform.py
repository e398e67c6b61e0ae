"""What every service runs on: the KMS key (secrets, database, logs), the ECS cluster, and one
factory each for task definitions and their log groups."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from .network import Network

RETENTION_NAMES = {1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
                   60: "TWO_MONTHS", 90: "THREE_MONTHS", 180: "SIX_MONTHS", 365: "ONE_YEAR"}


def retention(days: int) -> logs.RetentionDays:
    if days not in RETENTION_NAMES:
        raise ValueError(f"log_retention_days must be one of {sorted(RETENTION_NAMES)}")
    return logs.RetentionDays(RETENTION_NAMES[days])


class Platform(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, network: Network, log_retention_days: int) -> None:
        super().__init__(scope, construct_id)
        self.network = network
        self.retention = retention(log_retention_days)
        # Retained: the retained log groups, secrets and database snapshots are encrypted with it.
        self.key = kms.Key(self, "Key", enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN,
                           description="Secrets, database and logs of the MCP auth stack")
        self.cluster = ecs.Cluster(self, "Cluster", vpc=network.vpc,
                                   container_insights_v2=ecs.ContainerInsights.ENHANCED)

    def task(self, scope: Construct, construct_id: str, *, cpu: int, memory: int) -> ecs.FargateTaskDefinition:
        return ecs.FargateTaskDefinition(scope, construct_id, cpu=cpu, memory_limit_mib=memory,
                                         runtime_platform=ecs.RuntimePlatform(
                                             cpu_architecture=ecs.CpuArchitecture.X86_64,
                                             operating_system_family=ecs.OperatingSystemFamily.LINUX))

    def logs(self, scope: Construct, name: str) -> ecs.LogDriver:
        # No log_group_name: CloudFormation names the group after the stack and the construct, so
        # two stages never share one, and a retained group never blocks the next deploy.
        group = logs.LogGroup(scope, f"{name.title().replace('-', '')}Logs", retention=self.retention, encryption_key=self.key,
                              removal_policy=RemovalPolicy.RETAIN)
        # One JSON object per line from the MCP server: shipped as is, no multiline pattern.
        return ecs.LogDrivers.aws_logs(stream_prefix=name, log_group=group)

    def generated_secret(self, scope: Construct, construct_id: str, description: str) -> secretsmanager.Secret:
        return secretsmanager.Secret(
            scope, construct_id, description=description, encryption_key=self.key,
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=32),
            removal_policy=RemovalPolicy.RETAIN,
        )
