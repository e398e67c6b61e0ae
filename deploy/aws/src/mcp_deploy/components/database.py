"""A service's database: Aurora PostgreSQL Serverless v2, encrypted, in the data subnets,
reachable from its one client only. Two are built: Keycloak's (writer + reader: users, consents,
clients, sessions) and the notes API's (writer only: its notes). The stack never deletes one
silently: deletion protection is on, and deleting the stack leaves a final snapshot
(docs/production.md, "Two stages, destroy and redeploy")."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from .platform import Platform

PORT = 5433  # not the default 5432 (AwsSolutions-RDS11)


class Database(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, platform: Platform, name: str, client: str,
                 min_capacity: float, max_capacity: float, deletion_protection: bool, snapshot: str | None,
                 reader: bool = True) -> None:
        """`name`: the database, its user and the cluster's suffix; `client`: who alone may connect."""
        super().__init__(scope, construct_id)
        network = platform.network
        self.security_group = network.security_group(self, "DatabaseSg", f"Aurora PostgreSQL: {client} only")
        self.port = PORT
        self.name = name
        # Derived from the stack (two stages never collide), and free again once the stack is
        # deleted (the cluster is snapshotted, not retained), so a redeploy can take it.
        identifier = f"{Stack.of(self).stack_name.lower()}-{name}"
        # Created here, under the name RDS writes to, so that its retention and key are ours, not
        # set afterwards by a helper Lambda. Deleted with the cluster (it is named after it).
        log_group = logs.LogGroup(
            self, "Logs", log_group_name=f"/aws/rds/cluster/{identifier}/postgresql",
            retention=platform.retention, encryption_key=platform.key, removal_policy=RemovalPolicy.DESTROY)
        common = dict(
            cluster_identifier=identifier,
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=rds.AuroraPostgresEngineVersion.VER_17_9),
            port=PORT,
            writer=rds.ClusterInstance.serverless_v2("Writer"),
            readers=[rds.ClusterInstance.serverless_v2("Reader", scale_with_writer=True)] if reader else [],
            serverless_v2_min_capacity=min_capacity,
            serverless_v2_max_capacity=max_capacity,
            vpc=network.vpc,
            vpc_subnets=network.data_subnets,
            security_groups=[self.security_group],
            storage_encrypted=True,
            storage_encryption_key=platform.key,
            iam_authentication=True,
            deletion_protection=deletion_protection,
            backup=rds.BackupProps(retention=Duration.days(14)),
            cloudwatch_logs_exports=["postgresql"],
            # A final snapshot when the stack is deleted; the cluster itself goes, so its
            # identifier is free for the next deploy of this stage.
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        if snapshot:
            # Reattaching a stage's data: the cluster starts from a (final) snapshot, with a new
            # generated password for the same user.
            self.cluster: rds.DatabaseCluster | rds.DatabaseClusterFromSnapshot = rds.DatabaseClusterFromSnapshot(
                self, "Cluster", snapshot_identifier=snapshot,
                snapshot_credentials=rds.SnapshotCredentials.from_generated_secret(name, encryption_key=platform.key),
                **common)  # type: ignore[arg-type]
        else:
            self.cluster = rds.DatabaseCluster(
                self, "Cluster", credentials=rds.Credentials.from_generated_secret(name, encryption_key=platform.key),
                default_database_name=name, **common)  # type: ignore[arg-type]
        self.cluster.node.add_dependency(log_group)
        secret = self.cluster.secret
        assert secret is not None
        self.secret: secretsmanager.ISecret = secret
        self.connections = self.cluster.connections
        self.host = self.cluster.cluster_endpoint.hostname
        self.jdbc_url = f"jdbc:postgresql://{self.host}:{PORT}/{name}"
        # libpq's URI form, without credentials (they come from `secret`): TLS required; the
        # server's certificate is not verified (no RDS CA bundle in the images, docs/production.md).
        self.postgresql_url = f"postgresql://{self.host}:{PORT}/{name}?sslmode=require"
