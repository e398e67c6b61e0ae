"""The user's side of a browser sign-in: the prompt, the browser, and whether one happened."""

from __future__ import annotations

import sys
import webbrowser
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

# Shows the authorization URL to the user (prints it, opens a browser, or drives one in tests).
RedirectHandler = Callable[[str], Awaitable[None]]


def sign_in_prompt(url: str, *, callback: str | None = None, color: bool = False) -> str:
    """The sign-in prompt, the URL last: alone on its line (indented, nothing after it, so a
    terminal selects it whole), after a heading that says where the browser comes back to."""
    heading = "Open this URL to sign in"
    if color:
        heading = f"\033[1m{heading}\033[0m"
    if callback:
        heading += f" (your browser comes back to {callback})"
    return "\n".join(["", heading + ":", "", f"  {url}", ""])


async def print_and_open(url: str, *, open_browser: bool = True, callback: str | None = None) -> None:
    """Show the authorization URL and open a browser if there is one (C33: http(s) only, no shell)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")):
        raise ValueError(f"refusing to open a non-https authorization URL: {parts.scheme}://{parts.hostname}")
    print(sign_in_prompt(url, callback=callback, color=sys.stderr.isatty()), file=sys.stderr, flush=True)
    if open_browser:
        webbrowser.open(url)


@dataclass
class Login:
    """What the last connection used; for reporting."""

    registration: str
    client_id: str | None = None
    # A browser sign-in happened in this run (else stored tokens, refreshed if need be, sufficed).
    signed_in_now: bool = False


def noting_sign_ins(login: Login, show: RedirectHandler) -> RedirectHandler:
    """`show`, recording in `login` that the user was sent to sign in."""

    async def redirect(url: str) -> None:
        login.signed_in_now = True
        await show(url)

    return redirect
