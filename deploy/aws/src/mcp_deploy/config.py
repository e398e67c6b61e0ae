"""The deployment's parameters: one typed, validated object, read from a TOML file.

    python app.py                      # reads deploy/aws/config.toml (or $MCP_DEPLOY_CONFIG)

Image versions are not parameters: they come from compose/versions.env, the file the sandbox
pins them in, so production runs what `make test` tested.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
VERSIONS = ROOT / "compose" / "versions.env"
# The image policy's vocabulary (images.py); here because the config validates against it.
BASE_IMAGES = ("KEYCLOAK_IMAGE", "CADDY_IMAGE", "PYTHON_IMAGE")
SERVICES = ("keycloak", "egress", "mcp-server", "cimd-host", "realm-sync", "api")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
ECR_BY_DIGEST = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repository>[a-z0-9._/-]+)"
    r"@(?P<digest>sha256:[0-9a-f]{64})$")
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def pinned_versions(path: Path = VERSIONS) -> dict[str, str]:
    """compose/versions.env (KEY=VALUE, ${VAR} references to earlier keys)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], value)
    return values


@dataclass(frozen=True)
class DeployConfig:
    # Public names: auth.<domain> (Keycloak), mcp.<domain> (MCP server), cimd.<domain> (CIMD host),
    # api.<domain> (the notes API).
    domain: str
    # The Route 53 hosted zone the four records (and, without certificate_arn, the ACM DNS
    # validation records) go into.
    hosted_zone_id: str
    hosted_zone_name: str
    # Directory of the rendered public CIMD documents and JWKS for these names
    # (`python -m cimd_host --state <dir> render --origin https://cimd.<domain>`): only its
    # `cimd-public` part is shipped, and the build refuses anything that looks like a private key.
    cimd_state_dir: str
    # The region's managed prefix list for S3 (`aws ec2 describe-managed-prefix-lists --filters
    # Name=prefix-list-name,Values=com.amazonaws.<region>.s3`): Keycloak's tasks reach ECR's image
    # layers through the S3 gateway endpoint and nothing else outside the VPC.
    s3_prefix_list_id: str
    # The name of an existing Secrets Manager secret holding the MCP server's own client key, as
    # JSON {"kid": ..., "pem": ...}: it signs the private_key_jwt assertions of its token
    # introspection (privileged tools see revocation). Its public half is the JWKS rendered into
    # cimd_state_dir (services/mcp-server/jwks.json); docs/production.md shows how to create it.
    mcp_client_key_secret: str
    # An existing ACM certificate for the four names; unset: one is created, DNS-validated.
    certificate_arn: str | None = None
    realm: str = "mcp"
    account: str | None = None
    region: str = "eu-west-1"
    keycloak_tasks: int = 2
    keycloak_cpu: int = 1024
    keycloak_memory_mib: int = 2048
    mcp_min_tasks: int = 2
    mcp_max_tasks: int = 6
    mcp_cpu: int = 256
    mcp_memory_mib: int = 512
    # Aurora Serverless v2 capacity range (ACUs) of Keycloak's database.
    database_min_capacity: float = 0.5
    database_max_capacity: float = 4.0
    # The notes API (services/api): its tasks (stateless; >= 2, one per AZ) and its own database
    # (a second Aurora Serverless v2 cluster, writer only; docs/production.md, "The notes API").
    api_tasks: int = 2
    api_cpu: int = 256
    api_memory_mib: int = 512
    api_database_min_capacity: float = 0.5
    api_database_max_capacity: float = 2.0
    # Start the notes API's database from this snapshot (as database_snapshot does for Keycloak's).
    api_database_snapshot: str | None = None
    log_retention_days: int = 30
    # AWS WAF in front of the ALB with rate-based rules on the token and registration endpoints.
    waf: bool = True
    waf_requests_per_5_minutes: int = 300
    # Browser pages allowed to call the MCP server cross-origin (MCP_CORS_ALLOWED_ORIGINS);
    # empty in production unless you ship a browser client.
    cors_allowed_origins: str = ""
    # The loopback port in the agents' redirect URIs (the realm's ${AGENT_CALLBACK_PORT}).
    agent_callback_port: int = 8976
    alarm_email: str | None = None
    tags: dict[str, str] = field(default_factory=lambda: {"project": "mcp-auth-stack"})
    # The stage this config deploys: the stack is `mcp-auth-<stage>`, and every name the template
    # sets (database cluster, service discovery namespace, WAF metrics) derives from it, so
    # stages share an account and region without colliding.
    stage: str = "prod"
    # Off only to delete the stage on purpose (deploy with false, then `cdk destroy`); deleting
    # the stack leaves a final snapshot of the database either way.
    database_deletion_protection: bool = True
    # Start the database from this snapshot (identifier or ARN), e.g. the final snapshot a
    # deleted stage left: the way to reattach a stage's users and clients after a redeploy.
    database_snapshot: str | None = None
    # The base images (compose/versions.env) pinned by digest for the images cdk deploy builds:
    # {KEYCLOAK_IMAGE = "sha256:…", CADDY_IMAGE = "sha256:…", PYTHON_IMAGE = "sha256:…"}.
    base_image_digests: dict[str, str] = field(default_factory=dict)
    # Service images built elsewhere (e.g. by CI after `make test`), deployed by digest instead of
    # built: {"mcp-server" = "<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:…", …}.
    images: dict[str, str] = field(default_factory=dict)
    # Build on base images not pinned by digest, including the sandbox's local stand-ins
    # (label io.mcp-sandbox.local-equivalent): for a trial deployment from a machine without a
    # registry only (docs/production.md, "Images").
    allow_local_base_images: bool = False
    # The MCP server's DPoP mode (MCP_DPOP, RFC 9449): `allowed` (DPoP-bound or bearer tokens),
    # `required` (DPoP only; every client must send proofs), `off` (bearer only).
    dpop: str = "allowed"

    def __post_init__(self) -> None:
        problems = []
        for name in ("domain", "hosted_zone_name"):
            if not HOSTNAME.match(getattr(self, name)):
                problems.append(f"{name} must be a DNS name, got {getattr(self, name)!r}")
        if not (self.domain == self.hosted_zone_name or self.domain.endswith("." + self.hosted_zone_name)):
            problems.append(f"domain {self.domain} is not in the hosted zone {self.hosted_zone_name}")
        if self.keycloak_tasks < 2:
            problems.append("keycloak_tasks must be >= 2 (a clustered pair survives a task replacement)")
        if not 2 <= self.mcp_min_tasks <= self.mcp_max_tasks:
            problems.append("need 2 <= mcp_min_tasks <= mcp_max_tasks")
        if self.api_tasks < 2:
            problems.append("api_tasks must be >= 2 (one per availability zone)")
        if not re.fullmatch(r"[a-z0-9-]+", self.realm) or self.realm == "master":
            problems.append(f"realm must be a realm name other than master, got {self.realm!r}")
        if "*" in self.cors_allowed_origins.replace(":*", ""):
            problems.append("cors_allowed_origins: `*` is never allowed")
        if not re.fullmatch(r"pl-[0-9a-f]{8,17}", self.s3_prefix_list_id):
            problems.append(f"s3_prefix_list_id must be a prefix list id (pl-…), got {self.s3_prefix_list_id!r}")
        if self.certificate_arn is not None and not self.certificate_arn.startswith("arn:aws:acm:"):
            problems.append("certificate_arn must be an ACM certificate ARN")
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", self.stage):
            problems.append(f"stage must be a short lowercase name (a-z, 0-9, -), got {self.stage!r}")
        for name, digest in self.base_image_digests.items():
            if name not in BASE_IMAGES:
                problems.append(f"base_image_digests: unknown base image {name!r} (known: {', '.join(BASE_IMAGES)})")
            elif not DIGEST.match(digest):
                problems.append(f"base_image_digests.{name} must be sha256:<64 hex digits>, got {digest!r}")
        for service, reference in self.images.items():
            if service not in SERVICES:
                problems.append(f"images: unknown service {service!r} (known: {', '.join(SERVICES)})")
            elif not ECR_BY_DIGEST.match(reference):
                problems.append(f"images.{service} must be an ECR image by digest "
                                f"(<account>.dkr.ecr.<region>.amazonaws.com/<repo>@sha256:<hex>), got {reference!r}")
        if self.dpop not in ("allowed", "required", "off"):
            problems.append(f"dpop must be allowed, required or off, got {self.dpop!r}")
        if problems:
            raise ValueError("invalid deployment config: " + "; ".join(problems))

    @classmethod
    def load(cls, path: Path) -> DeployConfig:
        data = tomllib.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown settings {unknown}")
        if "cimd_state_dir" in data:  # relative to the config file, not to wherever cdk runs
            data["cimd_state_dir"] = str((path.parent / data["cimd_state_dir"]).resolve())
        return cls(**data)

    @property
    def stack_name(self) -> str:
        return f"mcp-auth-{self.stage}"

    def host(self, name: str) -> str:
        return f"{name}.{self.domain}"

    def origin(self, name: str) -> str:
        return f"https://{self.host(name)}"

    @property
    def issuer(self) -> str:
        return f"{self.origin('auth')}/realms/{self.realm}"

    @property
    def resource_url(self) -> str:
        return f"{self.origin('mcp')}/mcp"

    @property
    def api_url(self) -> str:
        """The notes API's public URL: its client id at Keycloak (the realm's ${API_URL}) and the
        audience of the tokens it accepts."""
        return self.origin("api")

    @property
    def cimd_public_dir(self) -> Path:
        return Path(self.cimd_state_dir) / "cimd-public"
