"""The CIMD host: cimd-host's own image (Caddyfile included) with the rendered public documents
copied in at build time. It talks to nobody: the ALB reaches it, it reaches only the AWS APIs it
starts with."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from ..config import ROOT
from .platform import Platform

PORT = 8080
# JWK members that hold private or secret key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def _private_jwk_members(value: object) -> set[str]:
    """The private members of every JWK (an object with `kty`) anywhere in a JSON document."""
    found: set[str] = set()
    if isinstance(value, dict):
        if "kty" in value:
            found |= PRIVATE_JWK_MEMBERS & value.keys()
        for item in value.values():
            found |= _private_jwk_members(item)
    elif isinstance(value, list):
        for item in value:
            found |= _private_jwk_members(item)
    return found


def _refuse_unless_public(path: Path) -> None:
    data = path.read_bytes()
    if path.suffix != ".json" or b"PRIVATE KEY" in data:
        raise ValueError(f"{path}: only public JSON documents may be shipped to the CIMD host")
    try:
        document = json.loads(data)
    except ValueError:
        raise ValueError(f"{path}: not a JSON document; only public JSON documents may be shipped") from None
    if private := _private_jwk_members(document):
        raise ValueError(f"{path}: a JWK with private members {sorted(private)}; "
                         "only public JSON documents may be shipped to the CIMD host")


def cimd_build_context(public_dir: Path) -> Path:
    """cimd-host's own Dockerfile and Caddyfile plus the rendered public files: the same image as
    the sandbox's, with /srv filled instead of mounted. Refuses anything that is not a public
    JSON document: PEM keys, and JWKs carrying private members (private keys live in the state
    directory's `keys/`, never here)."""
    if not public_dir.is_dir():
        raise ValueError(f"{public_dir} does not exist: render the CIMD documents first (docs/production.md)")
    for path in public_dir.rglob("*"):
        if path.is_file():
            _refuse_unless_public(path)
    context = Path(tempfile.mkdtemp(prefix="cimd-image-"))
    shutil.copy(ROOT / "cimd-host" / "Dockerfile", context / "Dockerfile")
    shutil.copy(ROOT / "cimd-host" / "Caddyfile", context / "Caddyfile")
    shutil.copytree(public_dir, context / "public")
    return context


class CimdHost(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, platform: Platform, image: ecs.ContainerImage) -> None:
        super().__init__(scope, construct_id)
        network = platform.network
        self.port = PORT
        self.security_group = network.security_group(self, "Sg", "CIMD host tasks")
        self.connections = self.security_group.connections
        self.task_definition = platform.task(self, "Task", cpu=256, memory=512)
        self.task_definition.add_container(
            "cimd-host", image=image, logging=platform.logs(self, "cimd-host"),
            port_mappings=[ecs.PortMapping(container_port=PORT)],
        )
        self.service = ecs.FargateService(
            self, "Service", cluster=platform.cluster, task_definition=self.task_definition, desired_count=2,
            min_healthy_percent=100, security_groups=[self.security_group], vpc_subnets=network.app_subnets,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        network.allow_aws_apis(self.security_group)

    def target(self) -> elbv2.IApplicationLoadBalancerTarget:
        return self.service.load_balancer_target(container_name="cimd-host", container_port=PORT)
