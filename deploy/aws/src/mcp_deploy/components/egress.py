"""The egress proxy (services/egress, smokescreen): the only way out for Keycloak's fetches of
client-chosen URLs (CIMD documents, jwks_uri), refusing internal addresses after DNS resolution."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from .platform import Platform

PORT = 4750


class EgressProxy(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, platform: Platform, image: ecs.ContainerImage) -> None:
        super().__init__(scope, construct_id)
        network = platform.network
        self.security_group = network.security_group(
            self, "Sg", "Egress proxy: HTTPS out to public addresses (smokescreen decides)")
        self.task_definition = platform.task(self, "Task", cpu=256, memory=512)
        self.task_definition.add_container(
            "egress", image=image, logging=platform.logs(self, "egress"),
            port_mappings=[ecs.PortMapping(container_port=PORT)],
            environment={"EGRESS_ALLOWED_PORTS": "443"},
            readonly_root_filesystem=True,
        )
        self.service = ecs.FargateService(
            self, "Service", cluster=platform.cluster, task_definition=self.task_definition, desired_count=2,
            security_groups=[self.security_group], vpc_subnets=network.app_subnets, min_healthy_percent=50,
            cloud_map_options=ecs.CloudMapOptions(name="egress", cloud_map_namespace=network.namespace),
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443),
                                            "HTTPS to the internet; smokescreen refuses private and metadata addresses")
        network.allow_aws_apis(self.security_group)
        self.connections = self.security_group.connections
        self.url = f"http://egress.{network.namespace.namespace_name}:{PORT}"

    def allow_from(self, peer: ec2.IConnectable, description: str) -> None:
        self.connections.allow_from(peer, ec2.Port.tcp(PORT), description)
