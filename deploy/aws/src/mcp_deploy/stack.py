"""The MCP auth stack on AWS: the sandbox's services as ECS Fargate services behind one ALB.

    compose service      ->  here
    caddy (TLS, routes)  ->  ALB: HTTPS listener (ACM), host/path rules, fixed 404 default
    keycloak (dev-file)  ->  ECS service, >= 2 tasks clustered over Aurora PostgreSQL (JDBC-ping)
    egress (smokescreen) ->  ECS service; Keycloak's only way out (its security group)
    mcp-server           ->  ECS service, >= 2 tasks, autoscaled on CPU and requests per target
    cimd-host            ->  ECS service, the rendered public documents baked into its image
    realm import         ->  a one-off ECS task (`kc.sh import`) for the first start (production profile)
    realm-sync           ->  a one-off ECS task for every later realm change (admin API, idempotent)
    registration-reaper  ->  the realm-sync task on a five-minute schedule (`realm-sync reap`)

Every image is built from the sandbox's own Dockerfile (services/*, cimd-host).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from aws_cdk import (
    CfnOutput,
    Duration,
    RemovalPolicy,
    Stack,
    Tags,
)
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_servicediscovery as servicediscovery
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from .config import ROOT, DeployConfig, pinned_versions

KEYCLOAK_HTTP = 8080
KEYCLOAK_MANAGEMENT = 9000
# JGroups (Keycloak 26 `jdbc-ping` stack): cluster traffic and its failure detection.
JGROUPS_PORTS = (7800, 57800)
MCP_PORT = 8000
CIMD_PORT = 8080
EGRESS_PORT = 4750
DATABASE_CLUSTER = "mcp-auth-keycloak"
DATABASE_PORT = 5433  # not the default 5432 (AwsSolutions-RDS11)
# The listener rules, in priority order; anything else gets the fixed 404.
RULE_PRIORITIES = {"keycloak-realm": 10, "keycloak-well-known": 20, "mcp": 30, "cimd": 40}


def _cimd_build_context(public_dir: Path) -> Path:
    """cimd-host's own Dockerfile and Caddyfile plus the rendered public files: the same image as
    the sandbox's, with /srv filled instead of mounted. Refuses anything that is not a public
    JSON document (private keys live in the state directory's `keys/`, never here)."""
    if not public_dir.is_dir():
        raise ValueError(f"{public_dir} does not exist: render the CIMD documents first (docs/production.md)")
    for path in public_dir.rglob("*"):
        if path.is_file() and (path.suffix != ".json" or b"PRIVATE KEY" in path.read_bytes()):
            raise ValueError(f"{path}: only public JSON documents may be shipped to the CIMD host")
    context = Path(tempfile.mkdtemp(prefix="cimd-image-"))
    shutil.copy(ROOT / "cimd-host" / "Dockerfile", context / "Dockerfile")
    shutil.copy(ROOT / "cimd-host" / "Caddyfile", context / "Caddyfile")
    shutil.copytree(public_dir, context / "public")
    return context


class McpAuthStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        versions = pinned_versions()
        for key, value in config.tags.items():
            Tags.of(self).add(key, value)

        # --- network ------------------------------------------------------------------------
        self.vpc = ec2.Vpc(
            self, "Vpc", max_azs=2, nat_gateways=2,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(
            logs.LogGroup(self, "FlowLogs", retention=self._retention(), removal_policy=RemovalPolicy.DESTROY)))
        app_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

        # Keycloak has no route to the internet of its own: its security group allows the database,
        # the egress proxy, its cluster peers and these AWS endpoints (image pulls, logs, secrets).
        self.endpoint_sg = ec2.SecurityGroup(self, "EndpointSg", vpc=self.vpc, allow_all_outbound=False,
                                             description="VPC interface endpoints (ECR, logs, Secrets Manager)")
        for name, service in {"Ecr": ec2.InterfaceVpcEndpointAwsService.ECR,
                              "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
                              "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
                              "Secrets": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER}.items():
            self.vpc.add_interface_endpoint(f"{name}Endpoint", service=service, subnets=app_subnets,
                                            security_groups=[self.endpoint_sg], private_dns_enabled=True, open=False)
        self.vpc.add_gateway_endpoint("S3Endpoint", service=ec2.GatewayVpcEndpointAwsService.S3)

        self.alb_sg = ec2.SecurityGroup(self, "AlbSg", vpc=self.vpc, allow_all_outbound=False,
                                        description="Internet-facing ALB: HTTPS in (HTTP only to redirect)")
        self.alb_sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS")
        self.alb_sg.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "HTTP, redirected to HTTPS")
        self.keycloak_sg = ec2.SecurityGroup(self, "KeycloakSg", vpc=self.vpc, allow_all_outbound=False,
                                             description="Keycloak tasks: no direct internet access")
        self.egress_sg = ec2.SecurityGroup(self, "EgressSg", vpc=self.vpc, allow_all_outbound=False,
                                           description="Egress proxy: HTTPS out to public addresses (smokescreen decides)")
        self.mcp_sg = ec2.SecurityGroup(self, "McpSg", vpc=self.vpc, allow_all_outbound=False,
                                        description="MCP server tasks")
        self.cimd_sg = ec2.SecurityGroup(self, "CimdSg", vpc=self.vpc, allow_all_outbound=False,
                                         description="CIMD host tasks")
        self.realm_sync_sg = ec2.SecurityGroup(self, "RealmSyncSg", vpc=self.vpc, allow_all_outbound=False,
                                               description="realm-sync task: the Keycloak admin API only")
        self.database_sg = ec2.SecurityGroup(self, "DatabaseSg", vpc=self.vpc, allow_all_outbound=False,
                                             description="Aurora PostgreSQL: Keycloak only")

        # --- secrets and database -------------------------------------------------------------
        self.key = kms.Key(self, "Key", enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN,
                           description="Secrets, database and logs of the MCP auth stack")
        # Created here (name fixed by the cluster identifier) so that its retention and key are ours,
        # not set afterwards by a helper Lambda.
        database_logs = logs.LogGroup(
            self, "DatabaseLogs", log_group_name=f"/aws/rds/cluster/{DATABASE_CLUSTER}/postgresql",
            retention=self._retention(), encryption_key=self.key, removal_policy=RemovalPolicy.RETAIN)
        self.database = rds.DatabaseCluster(
            self, "Database", cluster_identifier=DATABASE_CLUSTER,
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=rds.AuroraPostgresEngineVersion.VER_17_9),
            credentials=rds.Credentials.from_generated_secret("keycloak", encryption_key=self.key),
            default_database_name="keycloak",
            port=DATABASE_PORT,
            writer=rds.ClusterInstance.serverless_v2("Writer"),
            readers=[rds.ClusterInstance.serverless_v2("Reader", scale_with_writer=True)],
            serverless_v2_min_capacity=config.database_min_capacity,
            serverless_v2_max_capacity=config.database_max_capacity,
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[self.database_sg],
            storage_encrypted=True,
            storage_encryption_key=self.key,
            iam_authentication=True,
            deletion_protection=True,
            backup=rds.BackupProps(retention=Duration.days(14)),
            cloudwatch_logs_exports=["postgresql"],
            # Users, consents, clients (DCR and CIMD) and sessions live here: never deleted with the stack.
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.database.node.add_dependency(database_logs)
        secret = self.database.secret
        assert secret is not None
        self.database_secret = secret
        self.admin_secret = self._generated_secret("KeycloakAdminPassword", "Keycloak bootstrap admin password")
        self.admin_client_secret = self._generated_secret("KeycloakAdminClientSecret",
                                                          "Keycloak bootstrap service-account client secret")
        # The MCP server's own client key (private_key_jwt for token introspection): made by the
        # operator, never by the template, so the private key is in no template or image.
        self.mcp_client_key = secretsmanager.Secret.from_secret_name_v2(self, "McpServerClientKey",
                                                                         config.mcp_client_key_secret)

        # --- cluster, images, egress proxy -----------------------------------------------------
        self.cluster = ecs.Cluster(self, "Cluster", vpc=self.vpc,
                                   container_insights_v2=ecs.ContainerInsights.ENHANCED)
        namespace = servicediscovery.PrivateDnsNamespace(self, "Namespace", name="mcp.internal", vpc=self.vpc)
        python_image = {"PYTHON_IMAGE": versions["PYTHON_IMAGE"]}
        self.images = {
            # The production profile of the realm files (services/keycloak/realm/profile.py): no demo
            # users, none of the sandbox's test clients; the same scopes, roles, policies, MCP clients.
            "keycloak": ecs.ContainerImage.from_asset(
                str(ROOT / "services" / "keycloak"),
                build_args={"KEYCLOAK_IMAGE": versions["KEYCLOAK_IMAGE"], "KC_DB": "postgres", **python_image,
                            "REALM_PROFILE": "production"}),
            "egress": ecs.ContainerImage.from_asset(str(ROOT / "services" / "egress"), build_args=python_image),
            "mcp-server": ecs.ContainerImage.from_asset(str(ROOT / "services" / "mcp-server"), build_args=python_image),
            "cimd-host": ecs.ContainerImage.from_asset(str(_cimd_build_context(config.cimd_public_dir)),
                                                       build_args={"CADDY_IMAGE": versions["CADDY_IMAGE"]}),
            # Context services/, as in compose: the image holds the realm files next to its code.
            "realm-sync": ecs.ContainerImage.from_asset(str(ROOT / "services"), file="realm-sync/Dockerfile",
                                                        build_args={**python_image, "REALM_PROFILE": "production"}),
        }

        egress_task = self._task("Egress", cpu=256, memory=512)
        egress_task.add_container(
            "egress", image=self.images["egress"], logging=self._logs("egress"),
            port_mappings=[ecs.PortMapping(container_port=EGRESS_PORT)],
            environment={"EGRESS_ALLOWED_PORTS": "443"},
            readonly_root_filesystem=True,
        )
        self.egress = ecs.FargateService(
            self, "EgressService", cluster=self.cluster, task_definition=egress_task, desired_count=2,
            security_groups=[self.egress_sg], vpc_subnets=app_subnets, min_healthy_percent=50,
            cloud_map_options=ecs.CloudMapOptions(name="egress", cloud_map_namespace=namespace),
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        self.egress_sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443),
                                       "HTTPS to the internet; smokescreen refuses private and metadata addresses")
        self.egress_sg.connections.allow_from(self.keycloak_sg, ec2.Port.tcp(EGRESS_PORT), "Keycloak's fetches")
        self._allow_endpoints(self.egress_sg)

        # --- Keycloak ---------------------------------------------------------------------------
        self.alb = elbv2.ApplicationLoadBalancer(
            self, "Alb", vpc=self.vpc, internet_facing=True, security_group=self.alb_sg,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            # Streamable HTTP: a GET stream or a slow tool call may stay open this long.
            idle_timeout=Duration.seconds(300),
            drop_invalid_header_fields=True,
        )
        keycloak_environment = {
            "KC_HOSTNAME": config.origin("auth"),
            "KC_PROXY_HEADERS": "xforwarded",
            # Forwarded headers are believed only from inside the VPC (the ALB's addresses).
            "KC_PROXY_TRUSTED_ADDRESSES": self.vpc.vpc_cidr_block,
            "KC_HTTP_ENABLED": "true",
            "KC_DB_URL": f"jdbc:postgresql://{self.database.cluster_endpoint.hostname}:{DATABASE_PORT}/keycloak",
            "KC_SPI_CONNECTIONS_HTTP_CLIENT__DEFAULT__PROXY_MAPPINGS": f".*;http://egress.mcp.internal:{EGRESS_PORT}",
            "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
            "KC_BOOTSTRAP_ADMIN_CLIENT_ID": "sandbox-admin",
            "KC_LOG_LEVEL": "INFO",
            "MCP_RESOURCE_URL": config.resource_url,
            "CIMD_ORIGIN": config.origin("cimd"),
            "AGENT_CALLBACK_PORT": str(config.agent_callback_port),
        }
        keycloak_secrets = {
            "KC_DB_USERNAME": ecs.Secret.from_secrets_manager(self.database_secret, "username"),
            "KC_DB_PASSWORD": ecs.Secret.from_secrets_manager(self.database_secret, "password"),
            "KC_BOOTSTRAP_ADMIN_PASSWORD": ecs.Secret.from_secrets_manager(self.admin_secret),
            "KC_BOOTSTRAP_ADMIN_CLIENT_SECRET": ecs.Secret.from_secrets_manager(self.admin_client_secret),
        }
        keycloak_task = self._task("Keycloak", cpu=config.keycloak_cpu, memory=config.keycloak_memory_mib)
        keycloak_task.add_container(
            "keycloak", image=self.images["keycloak"], logging=self._logs("keycloak"),
            # The realm (production profile) is imported at the first start: Keycloak imports at boot
            # under its database boot lock, so one task of the cluster does it, and a realm that
            # exists is never touched (users and DCR/CIMD clients kept). The MCP tasks are ready
            # only once the realm's signing keys exist, so a first deploy needs it before they start.
            command=["start", "--optimized", "--import-realm"],
            environment=keycloak_environment, secrets=keycloak_secrets,
            port_mappings=[ecs.PortMapping(container_port=KEYCLOAK_HTTP),
                           ecs.PortMapping(container_port=KEYCLOAK_MANAGEMENT)],
        )
        self.keycloak = ecs.FargateService(
            self, "KeycloakService", cluster=self.cluster, task_definition=keycloak_task,
            desired_count=config.keycloak_tasks, min_healthy_percent=100, max_healthy_percent=200,
            security_groups=[self.keycloak_sg], vpc_subnets=app_subnets,
            health_check_grace_period=Duration.seconds(300),
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            # keycloak.mcp.internal: the admin API for the realm-sync task (never routed by the ALB).
            cloud_map_options=ecs.CloudMapOptions(name="keycloak", cloud_map_namespace=namespace),
        )
        self.keycloak_sg.connections.allow_to(self.database_sg, ec2.Port.tcp(DATABASE_PORT), "Keycloak's database")
        self.keycloak_sg.connections.allow_to(self.egress_sg, ec2.Port.tcp(EGRESS_PORT), "the egress proxy")
        for port in JGROUPS_PORTS:
            self.keycloak_sg.add_ingress_rule(self.keycloak_sg, ec2.Port.tcp(port), "Keycloak cluster (JGroups)")
            self.keycloak_sg.add_egress_rule(self.keycloak_sg, ec2.Port.tcp(port), "Keycloak cluster (JGroups)")
        self._allow_endpoints(self.keycloak_sg)
        self.admin_secret.grant_read(keycloak_task.execution_role)  # type: ignore[arg-type]

        # The realm, from the same realm-as-code file as the sandbox, applied by a one-off task.
        self.realm_import = self._task("RealmImport", cpu=512, memory=1024)
        self.realm_import.add_container(
            "realm-import", image=self.images["keycloak"], logging=self._logs("realm-import"),
            command=["import", "--file", f"/opt/keycloak/data/import/{config.realm}-realm.json", "--override", "false"],
            environment={k: v for k, v in keycloak_environment.items() if not k.startswith("KC_BOOTSTRAP")},
            # The production realm has no secret placeholders (no demo users, no client secrets).
            secrets={k: v for k, v in keycloak_secrets.items() if k.startswith("KC_DB")},
        )

        # Realm changes on the live realm: realm-sync, the tool make up runs in the sandbox, applied
        # through the admin API of one Keycloak task (services/realm-sync: idempotent, users and
        # DCR/CIMD clients kept). Only the served realm's file; `--check` first to preview.
        self.realm_sync = self._task("RealmSync", cpu=256, memory=512)
        self.realm_sync.add_container(
            "realm-sync", image=self.images["realm-sync"], logging=self._logs("realm-sync"),
            command=["--server", f"http://keycloak.mcp.internal:{KEYCLOAK_HTTP}", f"/realm/{config.realm}-realm.json"],
            environment={k: keycloak_environment[k] for k in ("MCP_RESOURCE_URL", "CIMD_ORIGIN", "AGENT_CALLBACK_PORT")},
            secrets={"KEYCLOAK_ADMIN_CLIENT_SECRET": ecs.Secret.from_secrets_manager(self.admin_client_secret)},
            readonly_root_filesystem=True,
        )
        self.realm_sync_sg.connections.allow_to(self.keycloak_sg, ec2.Port.tcp(KEYCLOAK_HTTP), "Keycloak's admin API")
        self._allow_endpoints(self.realm_sync_sg)
        # Anonymous registrations that never completed a login are deleted after an hour
        # (realm-sync reap; docs/authorization.md, "Registration exhaustion"): the same task,
        # every five minutes, as the sandbox's registration-reaper service does.
        self.reaper_schedule = events.Rule(
            self, "RegistrationReaper", schedule=events.Schedule.rate(Duration.minutes(5)),
            description="Delete anonymous client registrations that never completed a login (realm-sync reap)",
            targets=[events_targets.EcsTask(
                cluster=self.cluster, task_definition=self.realm_sync, launch_type=ecs.LaunchType.FARGATE,
                subnet_selection=app_subnets, security_groups=[self.realm_sync_sg],
                container_overrides=[events_targets.ContainerOverride(
                    container_name="realm-sync",
                    command=["reap", "--older-than", "3600", "--server", f"http://keycloak.mcp.internal:{KEYCLOAK_HTTP}",
                             f"/realm/{config.realm}-realm.json"])])])

        # --- MCP server ---------------------------------------------------------------------------
        mcp_task = self._task("McpServer", cpu=config.mcp_cpu, memory=config.mcp_memory_mib)
        mcp_task.add_container(
            "mcp-server", image=self.images["mcp-server"], logging=self._logs("mcp-server"),
            port_mappings=[ecs.PortMapping(container_port=MCP_PORT)],
            # The same MCP_* names as compose.yaml.
            environment={
                "MCP_ISSUER": config.issuer,
                "MCP_RESOURCE_URL": config.resource_url,
                "MCP_TRUSTED_PROXIES": self.vpc.vpc_cidr_block,
                "MCP_CORS_ALLOWED_ORIGINS": config.cors_allowed_origins,
            },
            # Privileged tools: token introspection as the MCP server's own client (its client id
            # is the resource URL, as in the realm file).
            secrets={"MCP_CLIENT_KEY_ID": ecs.Secret.from_secrets_manager(self.mcp_client_key, "kid"),
                     "MCP_CLIENT_KEY_PEM": ecs.Secret.from_secrets_manager(self.mcp_client_key, "pem")},
            readonly_root_filesystem=True,
        )
        self.mcp = ecs.FargateService(
            self, "McpService", cluster=self.cluster, task_definition=mcp_task,
            desired_count=config.mcp_min_tasks, min_healthy_percent=100, max_healthy_percent=200,
            security_groups=[self.mcp_sg], vpc_subnets=app_subnets,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        # Its JWKS and metadata: Keycloak's public URL, through the NAT.
        self.mcp_sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "Keycloak's public JWKS URL")

        # --- CIMD host ----------------------------------------------------------------------------
        cimd_task = self._task("CimdHost", cpu=256, memory=512)
        cimd_task.add_container(
            "cimd-host", image=self.images["cimd-host"], logging=self._logs("cimd-host"),
            port_mappings=[ecs.PortMapping(container_port=CIMD_PORT)],
        )
        self.cimd = ecs.FargateService(
            self, "CimdService", cluster=self.cluster, task_definition=cimd_task, desired_count=2,
            min_healthy_percent=100, security_groups=[self.cimd_sg], vpc_subnets=app_subnets,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        self.cimd_sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "image pulls and logs")

        # --- edge: certificate, listeners, rules, DNS -------------------------------------------------
        zone = route53.HostedZone.from_hosted_zone_attributes(
            self, "Zone", hosted_zone_id=config.hosted_zone_id, zone_name=config.hosted_zone_name)
        names = [config.host(n) for n in ("auth", "mcp", "cimd")]
        certificate = (
            acm.Certificate.from_certificate_arn(self, "Certificate", config.certificate_arn)
            if config.certificate_arn
            else acm.Certificate(self, "Certificate", domain_name=names[0], subject_alternative_names=names[1:],
                                 validation=acm.CertificateValidation.from_dns(zone))
        )
        access_logs = s3.Bucket(
            self, "AccessLogs", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(config.log_retention_days))],
        )
        self.alb.log_access_logs(access_logs, prefix="alb")
        self.alb.add_redirect(source_port=80, target_port=443)
        self.https = self.alb.add_listener(
            "Https", port=443, protocol=elbv2.ApplicationProtocol.HTTPS, certificates=[certificate],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS, open=False,
            default_action=elbv2.ListenerAction.fixed_response(404, content_type="text/plain", message_body="Not found"),
        )
        keycloak_targets = elbv2.ApplicationTargetGroup(
            self, "KeycloakTargets", vpc=self.vpc, port=KEYCLOAK_HTTP, protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.keycloak.load_balancer_target(container_name="keycloak", container_port=KEYCLOAK_HTTP)],
            # Readiness on the management port: never routed by any listener rule.
            health_check=elbv2.HealthCheck(path="/health/ready", port=str(KEYCLOAK_MANAGEMENT), healthy_http_codes="200",
                                           interval=Duration.seconds(15), healthy_threshold_count=2),
            deregistration_delay=Duration.seconds(30),
            # Keycloak's login forms keep state in the node's cache; stickiness avoids a cross-node
            # lookup for every step of a login (the cluster still shares it).
            stickiness_cookie_duration=Duration.minutes(30),
        )
        mcp_targets = elbv2.ApplicationTargetGroup(
            self, "McpTargets", vpc=self.vpc, port=MCP_PORT, protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.mcp.load_balancer_target(container_name="mcp-server", container_port=MCP_PORT)],
            # Readiness: 503 while a task holds no signing key of Keycloak (it would 401 every
            # token) or drains before a stop; /livez would pass in both cases.
            health_check=elbv2.HealthCheck(path="/readyz", healthy_http_codes="200", interval=Duration.seconds(10)),
            # Stateless: no stickiness. Long enough for in-flight tool calls to finish on scale-in.
            deregistration_delay=Duration.seconds(60),
        )
        cimd_targets = elbv2.ApplicationTargetGroup(
            self, "CimdTargets", vpc=self.vpc, port=CIMD_PORT, protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.cimd.load_balancer_target(container_name="cimd-host", container_port=CIMD_PORT)],
            health_check=elbv2.HealthCheck(path="/healthz", healthy_http_codes="200"),
            deregistration_delay=Duration.seconds(10),
        )
        auth_host = elbv2.ListenerCondition.host_headers([config.host("auth")])
        realm = config.realm
        self.https.add_action(
            "KeycloakRealm", priority=RULE_PRIORITIES["keycloak-realm"],
            conditions=[auth_host, elbv2.ListenerCondition.path_patterns([f"/realms/{realm}/*", "/resources/*"])],
            action=elbv2.ListenerAction.forward([keycloak_targets]),
        )
        self.https.add_action(
            "KeycloakWellKnown", priority=RULE_PRIORITIES["keycloak-well-known"],
            conditions=[auth_host, elbv2.ListenerCondition.path_patterns([
                f"/.well-known/oauth-authorization-server/realms/{realm}",
                f"/.well-known/openid-configuration/realms/{realm}"])],
            action=elbv2.ListenerAction.forward([keycloak_targets]),
        )
        self.https.add_action(
            "Mcp", priority=RULE_PRIORITIES["mcp"],
            conditions=[elbv2.ListenerCondition.host_headers([config.host("mcp")])],
            action=elbv2.ListenerAction.forward([mcp_targets]),
        )
        self.https.add_action(
            "Cimd", priority=RULE_PRIORITIES["cimd"],
            conditions=[elbv2.ListenerCondition.host_headers([config.host("cimd")])],
            action=elbv2.ListenerAction.forward([cimd_targets]),
        )
        self.keycloak_sg.connections.allow_from(self.alb_sg, ec2.Port.tcp(KEYCLOAK_HTTP), "ALB to Keycloak")
        self.keycloak_sg.connections.allow_from(self.alb_sg, ec2.Port.tcp(KEYCLOAK_MANAGEMENT), "ALB health checks")
        self.mcp_sg.connections.allow_from(self.alb_sg, ec2.Port.tcp(MCP_PORT), "ALB to the MCP server")
        self.cimd_sg.connections.allow_from(self.alb_sg, ec2.Port.tcp(CIMD_PORT), "ALB to the CIMD host")
        for name in ("auth", "mcp", "cimd"):
            route53.ARecord(self, f"{name.capitalize()}Record", zone=zone, record_name=config.host(name),
                            target=route53.RecordTarget.from_alias(targets.LoadBalancerTarget(self.alb)))

        # --- scaling ---------------------------------------------------------------------------------------
        scaling = self.mcp.auto_scale_task_count(min_capacity=config.mcp_min_tasks, max_capacity=config.mcp_max_tasks)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)
        scaling.scale_on_request_count("Requests", requests_per_target=500, target_group=mcp_targets)

        # --- operations: WAF, alarms ------------------------------------------------------------------------
        if config.waf:
            self._waf()
        topic = sns.Topic(self, "Alarms", master_key=self.key, enforce_ssl=True, display_name="MCP auth stack alarms")
        if config.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        alarm_action = cloudwatch_actions.SnsAction(topic)
        alarms = {
            "Alb5xx": self.alb.metrics.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=Duration.minutes(5)),
        }
        for name, group in {"Keycloak": keycloak_targets, "Mcp": mcp_targets, "Cimd": cimd_targets}.items():
            alarms[f"{name}Target5xx"] = group.metrics.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT,
                                                                        period=Duration.minutes(5))
            unhealthy = group.metrics.unhealthy_host_count(period=Duration.minutes(1))
            alarm = cloudwatch.Alarm(self, f"{name}Unhealthy", metric=unhealthy, threshold=1, evaluation_periods=3,
                                     comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                                     treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
            alarm.add_alarm_action(alarm_action)
        for name, metric in alarms.items():
            alarm = cloudwatch.Alarm(self, name, metric=metric, threshold=10, evaluation_periods=1,
                                     comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                                     treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
            alarm.add_alarm_action(alarm_action)

        CfnOutput(self, "Issuer", value=config.issuer)
        CfnOutput(self, "McpUrl", value=config.resource_url)
        CfnOutput(self, "RealmImportCommand", value=(
            f"aws ecs run-task --cluster {self.cluster.cluster_name} "
            f"--task-definition {self.realm_import.family} --launch-type FARGATE "
            f"--network-configuration 'awsvpcConfiguration={{subnets=[{self.vpc.private_subnets[0].subnet_id}],"
            f"securityGroups=[{self.keycloak_sg.security_group_id}]}}'"))
        CfnOutput(self, "RealmSyncCommand", value=(
            f"aws ecs run-task --cluster {self.cluster.cluster_name} "
            f"--task-definition {self.realm_sync.family} --launch-type FARGATE "
            f"--network-configuration 'awsvpcConfiguration={{subnets=[{self.vpc.private_subnets[0].subnet_id}],"
            f"securityGroups=[{self.realm_sync_sg.security_group_id}]}}'"))

    # --- helpers ------------------------------------------------------------------------------------------
    def _retention(self) -> logs.RetentionDays:
        return logs.RetentionDays(_retention_name(self.config.log_retention_days))

    def _logs(self, name: str) -> ecs.LogDriver:
        group = logs.LogGroup(self, f"{name.title().replace('-', '')}Logs", log_group_name=f"/mcp-auth/{name}",
                              retention=self._retention(), encryption_key=self.key,
                              removal_policy=RemovalPolicy.RETAIN)
        # One JSON object per line from the MCP server: shipped as is, no multiline pattern.
        return ecs.LogDrivers.aws_logs(stream_prefix=name, log_group=group)

    def _task(self, name: str, *, cpu: int, memory: int) -> ecs.FargateTaskDefinition:
        return ecs.FargateTaskDefinition(self, f"{name}Task", cpu=cpu, memory_limit_mib=memory,
                                         runtime_platform=ecs.RuntimePlatform(
                                             cpu_architecture=ecs.CpuArchitecture.X86_64,
                                             operating_system_family=ecs.OperatingSystemFamily.LINUX))

    def _generated_secret(self, construct_id: str, description: str) -> secretsmanager.Secret:
        return secretsmanager.Secret(
            self, construct_id, description=description, encryption_key=self.key,
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=32),
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _allow_endpoints(self, group: ec2.SecurityGroup) -> None:
        group.connections.allow_to(self.endpoint_sg, ec2.Port.tcp(443), "AWS APIs through VPC endpoints")
        group.add_egress_rule(ec2.Peer.prefix_list(self.config.s3_prefix_list_id), ec2.Port.tcp(443),
                              "ECR image layers (S3 gateway endpoint)")

    def _waf(self) -> None:
        realm = self.config.realm

        def rate_rule(name: str, priority: int, path: str) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name, priority=priority, action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    limit=self.config.waf_requests_per_5_minutes, aggregate_key_type="IP",
                    scope_down_statement=wafv2.CfnWebACL.StatementProperty(
                        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                            positional_constraint="STARTS_WITH", search_string=path,
                            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
                        )),
                )),
                visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                    cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True),
            )

        acl = wafv2.CfnWebACL(
            self, "WebAcl", scope="REGIONAL", default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name="mcp-auth", sampled_requests_enabled=True),
            rules=[
                rate_rule("token-endpoint", 1, f"/realms/{realm}/protocol/openid-connect/token"),
                rate_rule("client-registration", 2, f"/realms/{realm}/clients-registrations/"),
            ],
        )
        wafv2.CfnWebACLAssociation(self, "WebAclAlb", resource_arn=self.alb.load_balancer_arn,
                                   web_acl_arn=acl.attr_arn)


def _retention_name(days: int) -> str:
    names = {1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
             60: "TWO_MONTHS", 90: "THREE_MONTHS", 180: "SIX_MONTHS", 365: "ONE_YEAR"}
    if days not in names:
        raise ValueError(f"log_retention_days must be one of {sorted(names)}")
    return names[days]
