"""The edge (the sandbox's Caddy): one internet-facing ALB, HTTPS with an ACM certificate, port 80
only redirecting, one listener rule per public name and path, a fixed 404 for everything else,
and the Route 53 alias records. Services plug in with `add_host`."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from constructs import Construct

from ..config import DeployConfig
from .keycloak import Keycloak
from .network import Network

# Keycloak's rules come first; hosts added with add_host follow, in the order they are added.
KEYCLOAK_PRIORITIES = {"realm": 10, "oidc-path-inserted": 15, "well-known": 20}
FIRST_HOST_PRIORITY = 30


class Edge(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, network: Network, config: DeployConfig,
                 keycloak: Keycloak, names: list[str]) -> None:
        """`names`: the public names besides `auth` (each becomes <name>.<domain> on the certificate)."""
        super().__init__(scope, construct_id)
        self._config = config
        self._vpc = network.vpc
        self._next_priority = FIRST_HOST_PRIORITY
        self.security_group = network.security_group(self, "AlbSg", "Internet-facing ALB: HTTPS in (HTTP only to redirect)")
        self.security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS")
        self.security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "HTTP, redirected to HTTPS")
        self.alb = elbv2.ApplicationLoadBalancer(
            self, "Alb", vpc=network.vpc, internet_facing=True, security_group=self.security_group,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            # Streamable HTTP: a GET stream or a slow tool call may stay open this long.
            idle_timeout=Duration.seconds(300),
            drop_invalid_header_fields=True,
        )
        self.zone = route53.HostedZone.from_hosted_zone_attributes(
            self, "Zone", hosted_zone_id=config.hosted_zone_id, zone_name=config.hosted_zone_name)
        hosts = [config.host(n) for n in ("auth", *names)]
        self.certificate = (
            acm.Certificate.from_certificate_arn(self, "Certificate", config.certificate_arn)
            if config.certificate_arn
            else acm.Certificate(self, "Certificate", domain_name=hosts[0], subject_alternative_names=hosts[1:],
                                 validation=acm.CertificateValidation.from_dns(self.zone))
        )
        self.alb.add_redirect(source_port=80, target_port=443)
        self.listener = self.alb.add_listener(
            "Https", port=443, protocol=elbv2.ApplicationProtocol.HTTPS, certificates=[self.certificate],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS, open=False,
            default_action=elbv2.ListenerAction.fixed_response(404, content_type="text/plain", message_body="Not found"),
        )
        self.target_groups: dict[str, elbv2.ApplicationTargetGroup] = {}
        self._keycloak(keycloak)

    def _keycloak(self, keycloak: Keycloak) -> None:
        config = self._config
        realm = config.realm
        group = elbv2.ApplicationTargetGroup(
            self, "KeycloakTargets", vpc=self._vpc, port=keycloak.http_port, protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[keycloak.target()],
            # Readiness on the management port: never routed by any listener rule.
            health_check=elbv2.HealthCheck(path="/health/ready", port=str(keycloak.management_port),
                                           healthy_http_codes="200", interval=Duration.seconds(15),
                                           healthy_threshold_count=2),
            deregistration_delay=Duration.seconds(30),
            # Keycloak's login forms keep state in the node's cache; stickiness avoids a cross-node
            # lookup for every step of a login (the cluster still shares it).
            stickiness_cookie_duration=Duration.minutes(30),
        )
        self.target_groups["Keycloak"] = group
        auth_host = elbv2.ListenerCondition.host_headers([config.host("auth")])
        # Only the served realm's public paths (and theme resources); the master realm, the admin
        # API and console, health and metrics fall through to the 404.
        self.listener.add_action(
            "KeycloakRealm", priority=KEYCLOAK_PRIORITIES["realm"],
            conditions=[auth_host, elbv2.ListenerCondition.path_patterns([f"/realms/{realm}/*", "/resources/*"])],
            action=elbv2.ListenerAction.forward([group]),
        )
        # OIDC discovery with path insertion (MCP C5, second form): Keycloak does not serve it
        # (keycloak#45271), so the ALB rewrites it onto the realm-relative document, the same
        # JSON, as Caddy does in the sandbox. A rewrite, not a redirect: clients that do not
        # follow redirects on discovery get the document too.
        inserted = f"/.well-known/openid-configuration/realms/{realm}"
        elbv2.CfnListenerRule(
            self, "KeycloakOidcPathInserted", listener_arn=self.listener.listener_arn,
            priority=KEYCLOAK_PRIORITIES["oidc-path-inserted"],
            conditions=[
                elbv2.CfnListenerRule.RuleConditionProperty(
                    field="host-header", host_header_config=elbv2.CfnListenerRule.HostHeaderConfigProperty(
                        values=[config.host("auth")])),
                elbv2.CfnListenerRule.RuleConditionProperty(
                    field="path-pattern", path_pattern_config=elbv2.CfnListenerRule.PathPatternConfigProperty(
                        values=[inserted])),
            ],
            transforms=[elbv2.CfnListenerRule.TransformProperty(
                type="url-rewrite", url_rewrite_config=elbv2.CfnListenerRule.RewriteConfigObjectProperty(rewrites=[
                    elbv2.CfnListenerRule.RewriteConfigProperty(
                        regex=f"^/\\.well-known/openid-configuration/realms/{realm}$",
                        replace=f"/realms/{realm}/.well-known/openid-configuration")]))],
            actions=[elbv2.CfnListenerRule.ActionProperty(type="forward", target_group_arn=group.target_group_arn)],
        )
        # RFC 8414 path insertion, which Keycloak serves itself.
        self.listener.add_action(
            "KeycloakWellKnown", priority=KEYCLOAK_PRIORITIES["well-known"],
            conditions=[auth_host, elbv2.ListenerCondition.path_patterns([
                f"/.well-known/oauth-authorization-server/realms/{realm}"])],
            action=elbv2.ListenerAction.forward([group]),
        )
        keycloak.allow_http_from(self.security_group, "ALB to Keycloak")
        keycloak.connections.allow_from(self.security_group, ec2.Port.tcp(keycloak.management_port),
                                        "ALB health checks")
        self._record("auth")

    def add_host(self, construct_id: str, name: str, *, target: elbv2.IApplicationLoadBalancerTarget,
                 connections: ec2.Connections, port: int, health_check: elbv2.HealthCheck,
                 deregistration_delay: Duration) -> elbv2.ApplicationTargetGroup:
        """Route every request for <name>.<domain> to `target`: its target group, the listener
        rule, the ingress from the ALB and the DNS record. `name` must be one of the names the
        Edge was created with (they are on its certificate)."""
        group = elbv2.ApplicationTargetGroup(
            self, f"{construct_id}Targets", vpc=self._vpc, port=port, protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[target], health_check=health_check, deregistration_delay=deregistration_delay)
        self.listener.add_action(
            construct_id, priority=self._next_priority,
            conditions=[elbv2.ListenerCondition.host_headers([self._config.host(name)])],
            action=elbv2.ListenerAction.forward([group]),
        )
        self._next_priority += 10
        connections.allow_from(self.security_group, ec2.Port.tcp(port), f"ALB to {name}")
        self.target_groups[construct_id] = group
        self._record(name)
        return group

    def _record(self, name: str) -> None:
        route53.ARecord(self, f"{name.capitalize()}Record", zone=self.zone, record_name=self._config.host(name),
                        target=route53.RecordTarget.from_alias(targets.LoadBalancerTarget(self.alb)))
