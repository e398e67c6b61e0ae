"""The notes API (services/api), the MCP server's downstream: >= 2 stateless tasks on a database of
their own, public at api.<domain> — that URL is its client id at Keycloak and the audience its
tokens must carry (RFC 8707 §2) — and reached by the MCP server inside the VPC at
api.<stack>.internal:8000 (Cloud Map). Like the MCP server, it fetches Keycloak's JWKS through
Cloud Map and has no route to the internet: Keycloak's HTTP port, its database and the AWS APIs
are its only destinations."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from ..config import DeployConfig
from .database import Database
from .keycloak import Keycloak
from .platform import Platform

PORT = 8000
CONTAINER = "api"


class NotesApi(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, platform: Platform, config: DeployConfig,
                 keycloak: Keycloak, database: Database, image: ecs.ContainerImage) -> None:
        super().__init__(scope, construct_id)
        network = platform.network
        self.port = PORT
        self.security_group = network.security_group(self, "Sg", "Notes API tasks")
        self.connections = self.security_group.connections
        # The public URL is the audience (the realm's ${API_URL}); the internal one is only an address.
        self.url = config.api_url
        self.internal_url = f"http://api.{network.namespace.namespace_name}:{PORT}"
        self.task_definition = platform.task(self, "Task", cpu=config.api_cpu, memory=config.api_memory_mib)
        self.task_definition.add_container(
            CONTAINER, image=image, logging=platform.logs(self, "api"),
            port_mappings=[ecs.PortMapping(container_port=PORT)],
            # The same API_* names as compose.yaml (services/api/src/notes_api/config.py).
            environment={
                # Compared with the tokens' `iss` (RFC 8414 §3.3): the public issuer.
                "API_ISSUER": config.issuer,
                # Its client id at Keycloak and the `aud` its tokens must carry alone (RFC 8707 §2).
                "API_URL": self.url,
                # The signing keys from inside the VPC (Cloud Map), not over the internet.
                "API_JWKS_URL": f"{keycloak.realm_url(config.realm)}/protocol/openid-connect/certs",
                "API_TRUSTED_PROXIES": network.vpc.vpc_cidr_block,
                # PostgreSQL (libpq URI, no credentials in it); user and password are ECS secrets.
                "API_DATABASE_URL": database.postgresql_url,
            },
            secrets={"API_DATABASE_USER": ecs.Secret.from_secrets_manager(database.secret, "username"),
                     "API_DATABASE_PASSWORD": ecs.Secret.from_secrets_manager(database.secret, "password")},
            # The notes are in PostgreSQL: nothing is written to the task's disk.
            readonly_root_filesystem=True,
        )
        self.service = ecs.FargateService(
            self, "Service", cluster=platform.cluster, task_definition=self.task_definition,
            desired_count=config.api_tasks, min_healthy_percent=100, max_healthy_percent=200,
            security_groups=[self.security_group], vpc_subnets=network.app_subnets,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            # api.<stack>.internal: the MCP server's notes tools call it here (MCP_NOTES_API_URL).
            cloud_map_options=ecs.CloudMapOptions(name="api", cloud_map_namespace=network.namespace),
        )
        keycloak.allow_http_from(self.security_group, "Notes API: JWKS")
        self.connections.allow_to(database.connections, ec2.Port.tcp(database.port), "Notes API's database")
        network.allow_aws_apis(self.security_group)

    def allow_from(self, peer: ec2.IConnectable, description: str) -> None:
        self.connections.allow_from(peer, ec2.Port.tcp(PORT), description)

    def target(self) -> elbv2.IApplicationLoadBalancerTarget:
        return self.service.load_balancer_target(container_name=CONTAINER, container_port=PORT)
