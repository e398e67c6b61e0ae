"""Two stages in one account and region (docs/production.md, "Two stages, destroy and redeploy"):
`staging` and `prod` synthesized side by side set no physical name twice, every name the template
sets derives from the stack, and nothing a deleted stack leaves behind blocks its next deploy."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Template
from mcp_deploy.app import build, stacks_of

from tests.support.deploy import deploy_config, rendered_state

pytestmark = pytest.mark.deploy

# Properties that name a resource in the account (CloudFormation generates them when absent).
PHYSICAL_NAMES = {
    "AWS::RDS::DBCluster": "DBClusterIdentifier",
    "AWS::RDS::DBInstance": "DBInstanceIdentifier",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::ServiceDiscovery::PrivateDnsNamespace": "Name",
    "AWS::ECS::Cluster": "ClusterName",
    "AWS::ECS::Service": "ServiceName",
    "AWS::ECS::TaskDefinition": "Family",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::KMS::Alias": "AliasName",
    "AWS::WAFv2::WebACL": "Name",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "Name",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::Events::Rule": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::EC2::SecurityGroup": "GroupName",
}


@pytest.fixture(scope="module")
def stages() -> dict[str, dict]:
    state = rendered_state()
    configs = [deploy_config(state, stage="staging", domain="staging.mcp.example.com",
                             mcp_client_key_secret="staging-mcp-server-client-key"),
               deploy_config(state, stage="prod")]
    app = build(*configs)
    return {stack.config.stage: Template.from_stack(stack).to_json() for stack in stacks_of(app)}


def named(template: dict) -> dict[str, str]:
    """logical id -> the physical name the template sets (tokens rendered as JSON)."""
    out = {}
    for logical_id, resource in template["Resources"].items():
        prop = PHYSICAL_NAMES.get(resource["Type"])
        if prop and prop in resource.get("Properties", {}):
            value = resource["Properties"][prop]
            out[logical_id] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return out


def test_two_stages_in_one_account_set_no_physical_name_twice(stages: dict[str, dict]):
    assert set(stages) == {"staging", "prod"}
    staging, prod = (set(named(stages[s]).values()) for s in ("staging", "prod"))
    assert staging
    assert prod
    assert staging.isdisjoint(prod), staging & prod
    # The outputs the operators run differ too (task families are generated per stack).
    assert stages["staging"]["Outputs"]["Issuer"]["Value"] == "https://auth.staging.mcp.example.com/realms/mcp"


def test_every_name_the_template_sets_derives_from_the_stack(stages: dict[str, dict]):
    for stage, template in stages.items():
        names = named(template)
        assert names, stage
        for logical_id, name in names.items():
            # CDK spells the stack name without separators where it generates one (task families).
            assert f"mcpauth{stage}" in re.sub(r"[^a-z0-9]", "", name.lower()), (stage, logical_id, name)


def test_what_a_deleted_stack_leaves_behind_never_blocks_its_next_deploy(stages: dict[str, dict]):
    """Retained resources carry no name of ours (CloudFormation's generated names never repeat),
    and the named database cluster is not retained: it leaves a final snapshot and frees its
    identifier (and the log group named after it). So do the notes API's."""
    for stage, template in stages.items():
        names = named(template)
        kept = {lid: r for lid, r in template["Resources"].items() if r.get("DeletionPolicy") == "Retain"}
        assert kept, stage
        assert not set(kept) & set(names), {lid: names[lid] for lid in set(kept) & set(names)}
        clusters = [r for r in template["Resources"].values() if r["Type"] == "AWS::RDS::DBCluster"]
        assert {c["DeletionPolicy"] for c in clusters} == {"Snapshot"}
        identifiers = [f"mcp-auth-{stage}-keycloak", f"mcp-auth-{stage}-notes"]
        assert sorted(c["Properties"]["DBClusterIdentifier"] for c in clusters) == identifiers
        database_logs = [r for r in template["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"
                         and "LogGroupName" in r["Properties"]]
        assert sorted(g["Properties"]["LogGroupName"] for g in database_logs) == [
            f"/aws/rds/cluster/{identifier}/postgresql" for identifier in identifiers]
        assert {g["DeletionPolicy"] for g in database_logs} == {"Delete"}
        # What is retained (docs/production.md lists it): the KMS key, the service log groups,
        # the generated secrets and the access-log bucket.
        assert {r["Type"] for r in kept.values()} == {
            "AWS::KMS::Key", "AWS::Logs::LogGroup", "AWS::SecretsManager::Secret", "AWS::S3::Bucket"}


def test_a_stage_reattaches_its_data_from_a_snapshot():
    synth_app = build(deploy_config(rendered_state(), database_snapshot="mcp-auth-prod-keycloak-final",
                                    api_database_snapshot="mcp-auth-prod-notes-final"))
    (stack,) = stacks_of(synth_app)
    clusters = Template.from_stack(stack).find_resources("AWS::RDS::DBCluster").values()
    by_identifier = {c["Properties"]["DBClusterIdentifier"]: c["Properties"] for c in clusters}
    assert {name: c["SnapshotIdentifier"] for name, c in by_identifier.items()} == {
        "mcp-auth-prod-keycloak": "mcp-auth-prod-keycloak-final", "mcp-auth-prod-notes": "mcp-auth-prod-notes-final"}
    # A new generated password for the snapshot's user, in a new secret the tasks read.
    assert all("MasterUserPassword" in c for c in by_identifier.values())


@pytest.mark.parametrize("stage", ["Prod", "prod_1", "", "a" * 21, "1prod"])
def test_a_stage_name_that_cannot_name_resources_is_refused(stage: str):
    with pytest.raises(ValueError, match="stage must be"):
        deploy_config(rendered_state(), stage=stage)
