"""Running a third-party client that signs in interactively: it prints {"authorize": url} as its
first line, a real browser plays the user at that URL, and its last line is its result (JSON)."""

from __future__ import annotations

import json
import subprocess
from urllib.parse import parse_qsl, urlsplit

from tests.support.browser import User, chromium
from tests.support.stack import Stack


async def sign_in_and_run(stack: Stack, command: list[str], **popen: object) -> tuple[dict, dict[str, str]]:
    """The client's result, and the query of the authorization URL it sent the user to."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    try:
        assert process.stdout is not None
        authorize = json.loads(process.stdout.readline())["authorize"]
        async with chromium(stack.ca_file, User("alice", stack.secret("demo-user-password"))) as browser:
            await browser.open(authorize)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1]), dict(parse_qsl(urlsplit(authorize).query))
