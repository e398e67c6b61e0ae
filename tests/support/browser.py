"""A real headless Chromium (Debian's package, driven by Playwright) that trusts the sandbox CA.

Trust is given the way a person would: the CA goes into a fresh NSS database under a throwaway
HOME (Chromium on Linux reads $HOME/.pki/nssdb). No certificate error is ignored.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Browser, Page, Route, async_playwright

CHROMIUM = "/usr/bin/chromium"
# Flags for a closed network (environment.md): no background requests, no QUIC, no sandbox as root.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def nss_home(ca_file: Path) -> Path:
    home = Path(tempfile.mkdtemp(prefix="mcp-browser-home-"))
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    if shutil.which("certutil") is None:
        raise RuntimeError("certutil is missing (Debian package libnss3-tools); `make test` installs it")
    subprocess.run(["certutil", "-d", f"sql:{db}", "-N", "--empty-password"], check=True)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "mcp-sandbox", "-i", str(ca_file)],
                   check=True)
    return home


@dataclass
class User:
    username: str
    password: str


class KeycloakBrowser:
    """Plays the user at Keycloak's login and consent pages."""

    def __init__(self, browser: Browser, user: User) -> None:
        self.browser = browser
        self.user = user
        self.context = None
        self.page: Page | None = None
        self.logins = 0
        self.consents = 0
        self.rewrite_iss: str | None = None

    async def open(self, url: str, *, consent: bool = True) -> None:
        """The agent's redirect handler: go to the authorization URL and sign in."""
        if self.context is None:
            self.context = await self.browser.new_context()
            self.page = await self.context.new_page()
            if self.rewrite_iss is not None:
                await self.page.route("http://127.0.0.1:*/callback*", self._rewrite_iss)
        page = self.page
        await page.goto(url)
        if await page.locator("#username").count():
            await page.fill("#username", self.user.username)
            await page.fill("#password", self.user.password)
            await page.click("#kc-login")
            await page.wait_for_load_state()
            self.logins += 1
        if await page.locator("input[name=accept], #kc-login[name=accept]").count():
            self.consents += 1
            await page.click("#kc-login" if consent else "#kc-cancel")
        await page.wait_for_url("http://127.0.0.1:*/callback*")

    async def _rewrite_iss(self, route: Route) -> None:
        # A mix-up attacker's response: same code and state, another issuer (RFC 9207).
        from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

        parts = urlsplit(route.request.url)
        query = dict(parse_qsl(parts.query))
        query["iss"] = self.rewrite_iss
        await route.continue_(url=urlunsplit(parts._replace(query=urlencode(query))))

    async def error_text(self) -> str:
        return await self.page.inner_text("body") if self.page else ""


@asynccontextmanager
async def chromium(ca_file: Path, user: User) -> AsyncIterator[KeycloakBrowser]:
    home = nss_home(ca_file)
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, env={"HOME": str(home)})
            try:
                yield KeycloakBrowser(browser, user)
            finally:
                await browser.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
