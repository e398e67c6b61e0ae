"""The demo agent against the real stack, with a real browser playing the user (C1-C33).

Discover -> identify (CIMD / pre-registered / DCR) -> authorize (login + consent) -> call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mcp_agent.agent import connect
from mcp_agent.config import AgentSettings
from mcp_agent.storage import FileTokenStorage
from testcontainers.compose import DockerCompose

from tests.support.browser import KeycloakBrowser, User, chromium
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.anyio


def settings_for(stack: Stack, state: Path, **overrides) -> AgentSettings:
    return AgentSettings(
        server_url=stack.resource_url,
        ca_bundle=stack.ca_file,
        state_dir=state,
        client_metadata_url=f"{stack.cimd_origin}/agents/demo/metadata.json",
        key_dir=stack.key_dir("demo"),
        machine_key_dir=stack.key_dir("machine"),
        machine_issuer=stack.issuer,
        open_browser=False,
        login_timeout_seconds=60,
        **overrides,
    )


def user(stack: Stack) -> User:
    return User("alice", stack.secret("demo-user-password"))


async def login_and_call(settings: AgentSettings, browser: KeycloakBrowser) -> dict:
    async with connect(settings, redirect=browser.open) as (client, login):
        tools = {t.name for t in (await client.list_tools()).tools}
        now = await client.call_tool("get_time", {})
        who = (await client.call_tool("whoami", {})).structured_content
    assert tools == {"get_time", "whoami", "server_stats"}
    assert not now.is_error
    return {"login": login, "whoami": who}


def kcadm(compose: DockerCompose, stack: Stack, *args: str) -> str:
    stdout, stderr, code = compose.exec_in_container(
        ["/opt/keycloak/bin/kcadm.sh", *args, "--no-config", "--server", "http://localhost:8080",
         "--realm", "master", "--user", "admin", "--password", stack.secret("keycloak-admin-password")],
        service_name="keycloak",
    )
    assert code == 0, stderr
    return stdout


async def test_cimd_login_consent_and_tool_calls(stack: Stack, compose: DockerCompose, tmp_path: Path):
    """C13: the CIMD URL is the client_id; Keycloak fetches the document; private_key_jwt at the token endpoint."""
    settings = settings_for(stack, tmp_path)
    async with chromium(stack.ca_file, user(stack)) as browser:
        result = await login_and_call(settings, browser)
    assert browser.logins == 1 and browser.consents == 1
    assert result["login"].registration == "cimd"
    who = result["whoami"]
    assert who["client_id"] == settings.client_metadata_url
    assert who["audience"] == [stack.resource_url]
    assert who["username"] is None or who["username"] == "alice"
    # Keycloak made a client out of the fetched document: confidential, keys from the JWKS URL.
    clients = json.loads(kcadm(compose, stack, "get", "clients", "-r", "mcp", "-q", f"clientId={settings.client_metadata_url}"))
    assert len(clients) == 1
    assert clients[0]["publicClient"] is False
    assert clients[0]["attributes"]["jwks.url"] == f"{stack.cimd_origin}/agents/demo/jwks.json"
