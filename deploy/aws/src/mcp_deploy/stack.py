"""The MCP auth stack on AWS: the sandbox's services as ECS Fargate services behind one ALB,
composed from one Construct per component (components/):

    compose service      ->  here                                            component
    (networks)           ->  VPC, endpoints, Cloud Map namespace             Network
    —                    ->  KMS key, ECS cluster, task/log factories        Platform
    keycloak's database  ->  Aurora PostgreSQL Serverless v2                 Database
    egress (smokescreen) ->  ECS service; Keycloak's only way out            EgressProxy
    keycloak (dev-file)  ->  ECS service, >= 2 tasks clustered (jdbc-ping)   Keycloak
    realm-sync, reaper   ->  a one-off task, and it on a 5-minute schedule   RealmSync
    api (notes API)      ->  ECS service, >= 2 tasks, its own Aurora cluster NotesApi (+ Database)
    mcp-server           ->  ECS service, >= 2 tasks, autoscaled             McpServer
    cimd-host            ->  ECS service, the rendered documents baked in    CimdHost
    caddy (TLS, routes)  ->  ALB, certificate, listener rules, DNS           Edge
    —                    ->  access logs, WAF, alarms                        Operations

Images: images.py (digest pins, the sandbox's stand-ins refused). A new service is one more
component: a Construct taking `platform` (and `keycloak` if it talks to it), exposing
`connections`, `port` and `target()`, plugged in with `edge.add_host(...)` before Operations is
built (docs/production.md, "Adding a service").
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack, Tags
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from .components.cimd_host import CimdHost
from .components.database import Database
from .components.edge import Edge
from .components.egress import EgressProxy
from .components.keycloak import Keycloak
from .components.mcp_server import McpServer
from .components.network import Network
from .components.notes_api import NotesApi
from .components.operations import Operations
from .components.platform import Platform, retention
from .components.realm_sync import RealmSync
from .config import DeployConfig
from .images import Images, LabelReader, docker_labels


class McpAuthStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig,
                 labels_of: LabelReader = docker_labels, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        for key, value in config.tags.items():
            Tags.of(self).add(key, value)
        images = Images(self, "Images", config=config, labels_of=labels_of)

        self.network = Network(self, "Network", retention=retention(config.log_retention_days),
                               s3_prefix_list_id=config.s3_prefix_list_id)
        self.platform = Platform(self, "Platform", network=self.network, log_retention_days=config.log_retention_days)
        self.database = Database(self, "Database", platform=self.platform, name="keycloak", client="Keycloak",
                                 min_capacity=config.database_min_capacity, max_capacity=config.database_max_capacity,
                                 deletion_protection=config.database_deletion_protection,
                                 snapshot=config.database_snapshot)
        self.egress = EgressProxy(self, "Egress", platform=self.platform, image=images["egress"])
        self.keycloak = Keycloak(self, "Keycloak", platform=self.platform, config=config, database=self.database,
                                 egress=self.egress, image=images["keycloak"])
        self.realm_sync = RealmSync(self, "RealmSync", platform=self.platform, config=config, keycloak=self.keycloak,
                                    image=images["realm-sync"])
        # The notes API's own cluster: its data and credentials apart from Keycloak's
        # (docs/decisions.md, "The notes API on AWS: its own database cluster").
        self.api_database = Database(self, "ApiDatabase", platform=self.platform, name="notes", client="the notes API",
                                     min_capacity=config.api_database_min_capacity,
                                     max_capacity=config.api_database_max_capacity,
                                     deletion_protection=config.database_deletion_protection,
                                     snapshot=config.api_database_snapshot, reader=False)
        self.api = NotesApi(self, "NotesApi", platform=self.platform, config=config, keycloak=self.keycloak,
                            database=self.api_database, image=images["api"])
        self.mcp = McpServer(self, "McpServer", platform=self.platform, config=config, keycloak=self.keycloak,
                             notes_api=self.api, image=images["mcp-server"])
        self.cimd = CimdHost(self, "CimdHost", platform=self.platform, image=images["cimd-host"])

        self.edge = Edge(self, "Edge", network=self.network, config=config, keycloak=self.keycloak,
                         names=["mcp", "cimd", "api"])
        mcp_targets = self.edge.add_host(
            "Mcp", "mcp", target=self.mcp.target(), connections=self.mcp.connections, port=self.mcp.port,
            # Readiness: 503 while a task holds no signing key of Keycloak (it would 401 every
            # token) or drains before a stop; /livez would pass in both cases.
            health_check=elbv2.HealthCheck(path="/readyz", healthy_http_codes="200", interval=Duration.seconds(10)),
            # Stateless: no stickiness. Long enough for in-flight tool calls to finish on scale-in.
            deregistration_delay=Duration.seconds(60))
        self.mcp.scale_with(mcp_targets)
        self.edge.add_host(
            "Cimd", "cimd", target=self.cimd.target(), connections=self.cimd.connections, port=self.cimd.port,
            health_check=elbv2.HealthCheck(path="/healthz", healthy_http_codes="200"),
            deregistration_delay=Duration.seconds(10))
        self.edge.add_host(
            "Api", "api", target=self.api.target(), connections=self.api.connections, port=self.api.port,
            # Readiness, as for the MCP server: a task without Keycloak's signing keys would 401 every token.
            health_check=elbv2.HealthCheck(path="/readyz", healthy_http_codes="200", interval=Duration.seconds(10)),
            deregistration_delay=Duration.seconds(30))
        self.operations = Operations(self, "Operations", config=config, platform=self.platform, edge=self.edge)

        CfnOutput(self, "Issuer", value=config.issuer)
        CfnOutput(self, "McpUrl", value=config.resource_url)
        CfnOutput(self, "NotesApiUrl", value=config.api_url)
        CfnOutput(self, "RealmImportCommand", value=self._run_task(self.keycloak.import_task.family,
                                                                   self.keycloak.security_group.security_group_id))
        CfnOutput(self, "RealmSyncCommand", value=self._run_task(self.realm_sync.task_definition.family,
                                                                 self.realm_sync.security_group.security_group_id))

    def _run_task(self, family: str, security_group: str) -> str:
        return (f"aws ecs run-task --cluster {self.platform.cluster.cluster_name} "
                f"--task-definition {family} --launch-type FARGATE "
                f"--network-configuration 'awsvpcConfiguration={{subnets=[{self.network.vpc.private_subnets[0].subnet_id}],"
                f"securityGroups=[{security_group}]}}'")

