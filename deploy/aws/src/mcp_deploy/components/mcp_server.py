"""The MCP resource server: >= 2 stateless tasks, autoscaled. It reaches Keycloak's JWKS,
introspection and token endpoints through Cloud Map (keycloak.<stack>.internal), and the notes API
at api.<stack>.internal, so it needs no route to the internet at all: Keycloak's HTTP port, the
notes API's port and the AWS APIs are its only destinations."""

from __future__ import annotations

from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from ..config import DeployConfig
from .keycloak import Keycloak
from .notes_api import NotesApi
from .platform import Platform

PORT = 8000


class McpServer(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, platform: Platform, config: DeployConfig,
                 keycloak: Keycloak, notes_api: NotesApi, image: ecs.ContainerImage) -> None:
        super().__init__(scope, construct_id)
        network = platform.network
        self.port = PORT
        self.security_group = network.security_group(self, "Sg", "MCP server tasks")
        self.connections = self.security_group.connections
        # Its own client key (private_key_jwt for token introspection): made by the operator,
        # never by the template, so the private key is in no template or image.
        self.client_key = secretsmanager.Secret.from_secret_name_v2(self, "ClientKey", config.mcp_client_key_secret)
        realm = keycloak.realm_url(config.realm)
        self.task_definition = platform.task(self, "Task", cpu=config.mcp_cpu, memory=config.mcp_memory_mib)
        self.task_definition.add_container(
            "mcp-server", image=image, logging=platform.logs(self, "mcp-server"),
            port_mappings=[ecs.PortMapping(container_port=PORT)],
            # The same MCP_* names as compose.yaml.
            environment={
                # The issuer stays the public URL: it is compared with the tokens' `iss` (RFC 8414
                # §3.3) and is the audience of the introspection client's assertions.
                "MCP_ISSUER": config.issuer,
                "MCP_RESOURCE_URL": config.resource_url,
                # The keys and introspection from inside the VPC (Cloud Map), not over the internet.
                "MCP_JWKS_URL": f"{realm}/protocol/openid-connect/certs",
                "MCP_INTROSPECTION_URL": f"{realm}/protocol/openid-connect/token/introspect",
                "MCP_TRUSTED_PROXIES": network.vpc.vpc_cidr_block,
                "MCP_CORS_ALLOWED_ORIGINS": config.cors_allowed_origins,
                # Rejections tell the client what to do, never which check failed (an attacker
                # learns nothing from probing); the details stay in the server's log.
                "MCP_GENERIC_ERRORS": "true",
                # Sender-constrained tokens (RFC 9449): a replica's proof replay cache is its own
                # (docs/resource-server.md, "DPoP").
                "MCP_DPOP": config.dpop,
                # The notes tools call the API inside the VPC (Cloud Map), with a token exchanged
                # for its public URL, its client id (RFC 8693 §2.1 `audience`; RS13: never the
                # caller's own token).
                "MCP_NOTES_API_URL": notes_api.internal_url,
                "MCP_NOTES_API_AUDIENCE": notes_api.url,
            },
            # Privileged tools (token introspection) and the notes tools (token exchange), as the
            # MCP server's own client (its client id is the resource URL, as in the realm file).
            secrets={"MCP_CLIENT_KEY_ID": ecs.Secret.from_secrets_manager(self.client_key, "kid"),
                     "MCP_CLIENT_KEY_PEM": ecs.Secret.from_secrets_manager(self.client_key, "pem")},
            readonly_root_filesystem=True,
        )
        self.service = ecs.FargateService(
            self, "Service", cluster=platform.cluster, task_definition=self.task_definition,
            desired_count=config.mcp_min_tasks, min_healthy_percent=100, max_healthy_percent=200,
            security_groups=[self.security_group], vpc_subnets=network.app_subnets,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        keycloak.allow_http_from(self.security_group, "MCP server: JWKS, token introspection and exchange")
        notes_api.allow_from(self.security_group, "MCP server: the notes tools")
        network.allow_aws_apis(self.security_group)
        self._min, self._max = config.mcp_min_tasks, config.mcp_max_tasks

    def target(self) -> elbv2.IApplicationLoadBalancerTarget:
        return self.service.load_balancer_target(container_name="mcp-server", container_port=PORT)

    def scale_with(self, target_group: elbv2.ApplicationTargetGroup) -> None:
        """Autoscaling on CPU and on requests per target (the ALB's count for its target group)."""
        scaling = self.service.auto_scale_task_count(min_capacity=self._min, max_capacity=self._max)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)
        scaling.scale_on_request_count("Requests", requests_per_target=500, target_group=target_group)
