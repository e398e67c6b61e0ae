"""Which images a deployment runs, and the checks that make them trustworthy.

- A service image given in `images` (built and tested elsewhere, e.g. by CI) is deployed by its
  digest: an ECR reference `<account>.dkr.ecr.<region>.amazonaws.com/<repository>@sha256:<hex>`.
- Any other service image is built by `cdk deploy` from the sandbox's own Dockerfile. Its base
  images (compose/versions.env) are pinned by the digests in `base_image_digests`.
- The sandbox builds local stand-ins for base images no registry served, tagged with the upstream
  names and labelled `io.mcp-sandbox.local-equivalent=true` (compose/base-images/compose.yaml). A
  deployment refuses to build on one unless `allow_local_base_images` says so.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from aws_cdk import Annotations, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from .components.cimd_host import cimd_build_context
from .config import BASE_IMAGES, ECR_BY_DIGEST, ROOT, SERVICES, DeployConfig, pinned_versions

STAND_IN_LABEL = "io.mcp-sandbox.local-equivalent"

LabelReader = Callable[[str], "dict[str, str] | None"]


def docker_labels(reference: str) -> dict[str, str] | None:
    """The labels of the image this machine's Docker has under `reference`; None if it has none
    (or there is no Docker here: then `cdk deploy` cannot build on a local image either)."""
    try:
        # The operator's own Docker CLI, as `cdk deploy` itself runs it; the reference is a pin
        # from compose/versions.env, passed as one argument (no shell).
        command = ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", reference]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return json.loads(result.stdout or "null") or {}


def base_image_args(config: DeployConfig, versions: dict[str, str], labels_of: LabelReader = docker_labels
                    ) -> dict[str, str]:
    """The base images the service Dockerfiles are built FROM: `<name>:<tag>@<digest>` for each,
    so Docker uses exactly that upstream content (a local stand-in has no such digest)."""
    args = {}
    for name in BASE_IMAGES:
        reference = versions[name]
        digest = config.base_image_digests.get(name)
        if digest:
            args[name] = f"{reference}@{digest}"
            continue
        labels = labels_of(reference)
        stand_in = labels is not None and labels.get(STAND_IN_LABEL) == "true"
        if not config.allow_local_base_images:
            if stand_in:
                raise ValueError(
                    f"{reference} on this machine is the sandbox's local stand-in (label {STAND_IN_LABEL}), "
                    f"not the upstream image: pin the upstream one in base_image_digests.{name}, "
                    "or set allow_local_base_images = true to deploy the stand-in knowingly")
            raise ValueError(
                f"{name} ({reference}) is not pinned by digest: set base_image_digests.{name} "
                f"(docker buildx imagetools inspect {reference})")
        args[name] = reference
    return args


class Images(Construct):
    """One ContainerImage per service, by the policy above."""

    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig,
                 labels_of: LabelReader = docker_labels) -> None:
        super().__init__(scope, construct_id)
        base = base_image_args(config, pinned_versions(), labels_of)
        if config.allow_local_base_images:
            Annotations.of(self).add_warning_v2(
                "mcp-deploy:local-base-images",
                "allow_local_base_images is on: images may be built on unpinned base images or the sandbox's stand-ins")
        python = {"PYTHON_IMAGE": base["PYTHON_IMAGE"]}
        # The production profile of the realm files (services/keycloak/realm/profile.py) in both
        # images that carry them: no demo users, none of the sandbox's test clients.
        build: dict[str, Callable[[], ecs.ContainerImage]] = {
            "keycloak": lambda: ecs.ContainerImage.from_asset(
                str(ROOT / "services" / "keycloak"),
                build_args={"KEYCLOAK_IMAGE": base["KEYCLOAK_IMAGE"], "KC_DB": "postgres", **python,
                            "REALM_PROFILE": "production"}),
            "egress": lambda: ecs.ContainerImage.from_asset(str(ROOT / "services" / "egress"), build_args=python),
            "mcp-server": lambda: ecs.ContainerImage.from_asset(str(ROOT / "services" / "mcp-server"),
                                                                build_args=python),
            "cimd-host": lambda: ecs.ContainerImage.from_asset(str(cimd_build_context(config.cimd_public_dir)),
                                                               build_args={"CADDY_IMAGE": base["CADDY_IMAGE"]}),
            # Context services/, as in compose: the image holds the realm files next to its code.
            "realm-sync": lambda: ecs.ContainerImage.from_asset(str(ROOT / "services"), file="realm-sync/Dockerfile",
                                                                build_args={**python, "REALM_PROFILE": "production"}),
            # Context services/, as in compose: the API imports the MCP server's verifier source.
            "api": lambda: ecs.ContainerImage.from_asset(str(ROOT / "services"), file="api/Dockerfile",
                                                         build_args=python),
        }
        self.images: dict[str, ecs.ContainerImage] = {}
        for service in SERVICES:
            reference = config.images.get(service)
            self.images[service] = self._by_digest(service, reference) if reference else build[service]()

    def _by_digest(self, service: str, reference: str) -> ecs.ContainerImage:
        match = ECR_BY_DIGEST.match(reference)
        assert match is not None  # DeployConfig validated it
        partition = Stack.of(self).partition
        repository = ecr.Repository.from_repository_attributes(
            self, f"{service}Repository", repository_name=match["repository"],
            repository_arn=f"arn:{partition}:ecr:{match['region']}:{match['account']}:repository/{match['repository']}")
        # EcrImage renders <repository URI>@sha256:… and grants the execution role pulls from it.
        return ecs.ContainerImage.from_ecr_repository(repository, match["digest"])

    def __getitem__(self, service: str) -> ecs.ContainerImage:
        return self.images[service]
