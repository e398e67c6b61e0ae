"""The network: a VPC over two AZs (public, app and data subnets), flow logs, the VPC endpoints the
tasks reach AWS through, and the private DNS namespace (Cloud Map) the services find each other in."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_servicediscovery as servicediscovery
from constructs import Construct


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, retention: logs.RetentionDays,
                 s3_prefix_list_id: str) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self, "Vpc", max_azs=2, nat_gateways=2,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )
        # Unnamed (CloudFormation names it after the stack): two stages never collide, and a
        # destroy + deploy never finds an old group in the way.
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(
            logs.LogGroup(self, "FlowLogs", retention=retention, removal_policy=RemovalPolicy.DESTROY)))
        self.app_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.data_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self._s3_prefix_list_id = s3_prefix_list_id

        # The AWS APIs every task starts with (image pulls, logs, secrets), inside the VPC: no task
        # needs the internet for them.
        self.endpoints = self.security_group(self, "EndpointSg", "VPC interface endpoints (ECR, logs, Secrets Manager)")
        for name, service in {"Ecr": ec2.InterfaceVpcEndpointAwsService.ECR,
                              "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
                              "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
                              "Secrets": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER}.items():
            self.vpc.add_interface_endpoint(f"{name}Endpoint", service=service, subnets=self.app_subnets,
                                            security_groups=[self.endpoints], private_dns_enabled=True, open=False)
        self.vpc.add_gateway_endpoint("S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3)

        # <stack>.internal: named after the stack, so each stage has its own.
        self.namespace = servicediscovery.PrivateDnsNamespace(
            self, "Namespace", name=f"{Stack.of(self).stack_name.lower()}.internal", vpc=self.vpc,
            description="Service discovery of the MCP auth stack (Keycloak, egress proxy)")

    def security_group(self, scope: Construct, construct_id: str, description: str) -> ec2.SecurityGroup:
        """A group in this VPC that allows nothing out until its component says what it needs."""
        return ec2.SecurityGroup(scope, construct_id, vpc=self.vpc, allow_all_outbound=False, description=description)

    def allow_aws_apis(self, group: ec2.SecurityGroup) -> None:
        """Image pulls, logs and secrets: the VPC endpoints, and ECR's layers on S3 (gateway endpoint)."""
        group.connections.allow_to(self.endpoints, ec2.Port.tcp(443), "AWS APIs through VPC endpoints")
        group.add_egress_rule(ec2.Peer.prefix_list(self._s3_prefix_list_id), ec2.Port.tcp(443),
                              "ECR image layers (S3 gateway endpoint)")
