"""Keycloak, the authorization server: >= 2 tasks clustered over the database (jdbc-ping), the
realm (production profile) imported at the first start, registered in Cloud Map for the tasks
that talk to it directly, and a one-off task for an explicit re-import."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from ..config import DeployConfig
from .database import Database
from .egress import EgressProxy
from .platform import Platform

HTTP_PORT = 8080
MANAGEMENT_PORT = 9000
# JGroups (Keycloak 26 `jdbc-ping` stack): cluster traffic and its failure detection.
JGROUPS_PORTS = (7800, 57800)
# The bootstrap service-account client realm-sync logs in as (services/keycloak/entrypoint.sh).
ADMIN_CLIENT_ID = "sandbox-admin"


class Keycloak(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, platform: Platform, config: DeployConfig,
                 database: Database, egress: EgressProxy, image: ecs.ContainerImage) -> None:
        super().__init__(scope, construct_id)
        network = platform.network
        self.security_group = network.security_group(self, "Sg", "Keycloak tasks: no direct internet access")
        self.connections = self.security_group.connections
        self.http_port = HTTP_PORT
        self.management_port = MANAGEMENT_PORT
        self.admin_secret = platform.generated_secret(self, "AdminPassword", "Keycloak bootstrap admin password")
        self.admin_client_secret: secretsmanager.ISecret = platform.generated_secret(
            self, "AdminClientSecret", "Keycloak bootstrap service-account client secret")
        # keycloak.<stack>.internal: the realm's endpoints for the tasks that talk to Keycloak
        # directly (the MCP server's JWKS and introspection, realm-sync's admin API). No ALB rule
        # routes the admin API.
        self.internal_origin = f"http://keycloak.{network.namespace.namespace_name}:{HTTP_PORT}"
        self.environment = {
            "KC_HOSTNAME": config.origin("auth"),
            "KC_PROXY_HEADERS": "xforwarded",
            # Forwarded headers are believed only from inside the VPC (the ALB's addresses).
            "KC_PROXY_TRUSTED_ADDRESSES": network.vpc.vpc_cidr_block,
            "KC_HTTP_ENABLED": "true",
            "KC_DB_URL": database.jdbc_url,
            "KC_SPI_CONNECTIONS_HTTP_CLIENT__DEFAULT__PROXY_MAPPINGS": f".*;{egress.url}",
            "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
            "KC_BOOTSTRAP_ADMIN_CLIENT_ID": ADMIN_CLIENT_ID,
            "KC_LOG_LEVEL": "INFO",
            "MCP_RESOURCE_URL": config.resource_url,
            # The notes API's client id (the realm's ${API_URL}): its public URL (components/notes_api.py).
            "API_URL": config.api_url,
            "CIMD_ORIGIN": config.origin("cimd"),
            "AGENT_CALLBACK_PORT": str(config.agent_callback_port),
        }
        database_secrets = {
            "KC_DB_USERNAME": ecs.Secret.from_secrets_manager(database.secret, "username"),
            "KC_DB_PASSWORD": ecs.Secret.from_secrets_manager(database.secret, "password"),
        }
        self.task_definition = platform.task(self, "Task", cpu=config.keycloak_cpu, memory=config.keycloak_memory_mib)
        self.task_definition.add_container(
            "keycloak", image=image, logging=platform.logs(self, "keycloak"),
            # The realm (production profile) is imported at the first start: Keycloak imports at boot
            # under its database boot lock, so one task of the cluster does it, and a realm that
            # exists is never touched (users and DCR/CIMD clients kept). The MCP tasks are ready
            # only once the realm's signing keys exist, so a first deploy needs it before they start.
            command=["start", "--optimized", "--import-realm"],
            environment=self.environment,
            secrets={**database_secrets,
                     "KC_BOOTSTRAP_ADMIN_PASSWORD": ecs.Secret.from_secrets_manager(self.admin_secret),
                     "KC_BOOTSTRAP_ADMIN_CLIENT_SECRET": ecs.Secret.from_secrets_manager(self.admin_client_secret)},
            port_mappings=[ecs.PortMapping(container_port=HTTP_PORT), ecs.PortMapping(container_port=MANAGEMENT_PORT)],
        )
        self.service = ecs.FargateService(
            self, "Service", cluster=platform.cluster, task_definition=self.task_definition,
            desired_count=config.keycloak_tasks, min_healthy_percent=100, max_healthy_percent=200,
            security_groups=[self.security_group], vpc_subnets=network.app_subnets,
            health_check_grace_period=Duration.seconds(300),
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            cloud_map_options=ecs.CloudMapOptions(name="keycloak", cloud_map_namespace=network.namespace),
        )
        self.connections.allow_to(database.connections, ec2.Port.tcp(database.port), "Keycloak's database")
        egress.allow_from(self.security_group, "Keycloak's fetches")
        for port in JGROUPS_PORTS:
            self.security_group.add_ingress_rule(self.security_group, ec2.Port.tcp(port), "Keycloak cluster (JGroups)")
            self.security_group.add_egress_rule(self.security_group, ec2.Port.tcp(port), "Keycloak cluster (JGroups)")
        network.allow_aws_apis(self.security_group)

        # The realm, from the same realm-as-code file as the sandbox, for an explicit re-import.
        self.import_task = platform.task(self, "RealmImportTask", cpu=512, memory=1024)
        self.import_task.add_container(
            "realm-import", image=image, logging=platform.logs(self, "realm-import"),
            command=["import", "--file", f"/opt/keycloak/data/import/{config.realm}-realm.json", "--override", "false"],
            environment={k: v for k, v in self.environment.items() if not k.startswith("KC_BOOTSTRAP")},
            # The production realm has no secret placeholders (no demo users, no client secrets).
            secrets=database_secrets,
        )

    def realm_url(self, realm: str) -> str:
        """The realm's endpoints inside the VPC (Cloud Map), e.g. for JWKS and introspection."""
        return f"{self.internal_origin}/realms/{realm}"

    def allow_http_from(self, peer: ec2.IConnectable, description: str) -> None:
        self.connections.allow_from(peer, ec2.Port.tcp(HTTP_PORT), description)

    def target(self) -> elbv2.IApplicationLoadBalancerTarget:
        return self.service.load_balancer_target(container_name="keycloak", container_port=HTTP_PORT)
