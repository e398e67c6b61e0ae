"""realm-sync (services/realm-sync) on AWS: the one-off task that applies a realm change to the
live realm through Keycloak's admin API, and the same task on a schedule as the registration
reaper (`realm-sync reap`).

Its path to the admin API: keycloak.<stack>.internal:8080 inside the VPC, plain HTTP, on a path
no other task can observe or redirect (docs/production.md, "realm-sync's path to the admin API")."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from constructs import Construct

from ..config import DeployConfig
from .keycloak import Keycloak
from .platform import Platform


class RealmSync(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, platform: Platform, config: DeployConfig,
                 keycloak: Keycloak, image: ecs.ContainerImage) -> None:
        super().__init__(scope, construct_id)
        network = platform.network
        self.security_group = network.security_group(self, "Sg", "realm-sync task: the Keycloak admin API only")
        realm_file = f"/realm/{config.realm}-realm.json"
        self.server_args = ["--server", keycloak.internal_origin]
        self.task_definition = platform.task(self, "Task", cpu=256, memory=512)
        self.task_definition.add_container(
            "realm-sync", image=image, logging=platform.logs(self, "realm-sync"),
            command=[*self.server_args, realm_file],
            environment={k: keycloak.environment[k] for k in ("MCP_RESOURCE_URL", "API_URL", "CIMD_ORIGIN", "AGENT_CALLBACK_PORT")},
            secrets={"KEYCLOAK_ADMIN_CLIENT_SECRET": ecs.Secret.from_secrets_manager(keycloak.admin_client_secret)},
            readonly_root_filesystem=True,
        )
        keycloak.allow_http_from(self.security_group, "realm-sync: Keycloak's admin API")
        network.allow_aws_apis(self.security_group)
        # Anonymous registrations that never completed a login are deleted after an hour
        # (realm-sync reap; docs/authorization.md, "Registration exhaustion"): the same task,
        # every five minutes, as the sandbox's registration-reaper service does.
        self.reaper_schedule = events.Rule(
            self, "RegistrationReaper", schedule=events.Schedule.rate(Duration.minutes(5)),
            description="Delete anonymous client registrations that never completed a login (realm-sync reap)",
            targets=[events_targets.EcsTask(
                cluster=platform.cluster, task_definition=self.task_definition, launch_type=ecs.LaunchType.FARGATE,
                subnet_selection=network.app_subnets, security_groups=[self.security_group],
                container_overrides=[events_targets.ContainerOverride(
                    container_name="realm-sync",
                    command=["reap", "--older-than", "3600", *self.server_args, realm_file])])])
