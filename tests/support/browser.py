"""A real headless Chromium (Debian's package, driven by Playwright) that trusts the sandbox CA.

Trust is given the way a person would: the CA goes into a fresh NSS database under a throwaway
HOME (Chromium on Linux reads $HOME/.pki/nssdb). No certificate error is ignored.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

from tests.support.secrets import remember

CHROMIUM = "/usr/bin/chromium"
# Where a client's loopback redirect lands (RFC 8252: the IP literal, or `localhost` as some clients use).
CALLBACK = re.compile(r"^http://(127\.0\.0\.1|localhost):\d+/(oauth/)?callback")
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


def nss_home(ca_file: Path | None) -> Path:
    home = Path(tempfile.mkdtemp(prefix="mcp-browser-home-"))
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    if shutil.which("certutil") is None:
        raise RuntimeError("certutil is missing (Debian package libnss3-tools); `make test` installs it")
    subprocess.run(["certutil", "-d", f"sql:{db}", "-N", "--empty-password"], check=True)
    if ca_file is not None:  # None: a remote deployment with publicly trusted certificates
        subprocess.run(["certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "mcp-sandbox", "-i", str(ca_file)],
                       check=True)
    return home


async def network_settled(quiet_seconds: float = 1.0, at_most: float = 15.0) -> None:
    """Wait until the host's interfaces stop changing: after a container starts, Docker's veth
    and its IPv6 address (tentative until duplicate detection ends) make Chromium abort whatever
    it is loading with ERR_NETWORK_CHANGED. Reads `ip -o addr` until it is the same, with no
    tentative address, for `quiet_seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + at_most
    last, since = None, loop.time()
    while loop.time() < deadline:
        now = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
        if now != last or "tentative" in now:
            last, since = now, loop.time()
        elif loop.time() - since >= quiet_seconds:
            return
        await asyncio.sleep(0.1)


async def goto(page: Page, url: str, attempts: int = 3) -> None:
    """Navigate, again if Chromium aborted because the host's interfaces changed: Docker adds a
    veth whenever a container starts (ERR_NETWORK_CHANGED), which is not the page's fault."""
    for attempt in range(1, attempts + 1):
        try:
            await page.goto(url)
            return
        except PlaywrightError as exc:
            if "ERR_NETWORK_CHANGED" not in str(exc) or attempt == attempts:
                raise


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
        # Forge the authorization response the agent receives: {param: value}.
        self.rewrite_callback: dict[str, str] = {}
        self.authorization_urls: list[str] = []

    async def tab(self) -> Page:
        """The one tab this user works in (created on first use)."""
        if self.context is None:
            self.context = await self.browser.new_context()
            self.page = await self.context.new_page()
            if self.rewrite_callback:
                # Playwright does not route redirect targets; Chromium's own Fetch domain does.
                cdp = await self.context.new_cdp_session(self.page)
                await cdp.send("Fetch.enable", {"patterns": [{"urlPattern": "http://127.0.0.1:*/callback*"}]})
                cdp.on("Fetch.requestPaused", lambda event: asyncio.ensure_future(self._forge(cdp, event)))
        assert self.page is not None
        return self.page

    async def visit(self, url: str) -> Page:
        """Go to a page that is not Keycloak's (a web client), in the same tab."""
        page = await self.tab()
        await goto(page, url)
        return page

    async def open(self, url: str, *, consent: bool = True) -> None:
        """The agent's redirect handler: go to the authorization URL and sign in."""
        page = await self.tab()
        self.authorization_urls.append(url)
        await goto(page, url)
        await self.sign_in(consent=consent)

    async def sign_in(self, *, consent: bool = True) -> None:
        """On Keycloak's page (where a client sent this tab): log in, consent, back to the client."""
        page = await self.tab()
        if await page.locator("#username").count():
            await page.fill("#username", self.user.username)
            await page.fill("#password", self.user.password)
            await page.click("#kc-login")
            await page.wait_for_load_state()
            self.logins += 1
        if await page.locator("input[name=accept], #kc-login[name=accept]").count():
            self.consents += 1
            await page.click("#kc-login" if consent else "#kc-cancel")
        await page.wait_for_url(CALLBACK)
        remember(self.user.password, dict(parse_qsl(urlsplit(page.url).query)).get("code"))

    async def _forge(self, cdp, event: dict) -> None:
        # An attacker's authorization response: e.g. another issuer (mix-up) or another state (CSRF).
        parts = urlsplit(event["request"]["url"])
        query = {**dict(parse_qsl(parts.query)), **self.rewrite_callback}
        forged = urlunsplit(parts._replace(query=urlencode(query)))
        await cdp.send("Fetch.continueRequest", {"requestId": event["requestId"], "url": forged})

    async def error_text(self) -> str:
        return await self.page.inner_text("body") if self.page else ""


@asynccontextmanager
async def chromium(ca_file: Path | None, user: User) -> AsyncIterator[KeycloakBrowser]:
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
