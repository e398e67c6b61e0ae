"""The TLS front's Caddyfile, read as text: every site on the HTTPS port sends HSTS.

Keycloak sends its own Strict-Transport-Security only on some of its pages; the MCP server and
the CIMD host send none. Caddy sets it for every name (deferred, so it replaces Keycloak's rather
than doubling it). A parse of the top-level blocks, with snippet imports expanded, not a Caddy
run: the stack tests see the header on the wire.
"""

from __future__ import annotations

import re

import pytest

from tests.support.stack import ROOT

CADDYFILE = ROOT / "services" / "caddy" / "Caddyfile"
COMMENT = re.compile(r"(^|\s)#.*$")
HSTS = re.compile(r'^\s*(?:header\s+)?Strict-Transport-Security\s+"max-age=(\d+); includeSubDomains"\s*$')


def top_level_blocks(text: str) -> dict[str, list[str]]:
    """The address line of each top-level block (site or snippet) -> its body's lines."""
    blocks: dict[str, list[str]] = {}
    depth = 0
    head = ""
    for raw in text.splitlines():
        line = COMMENT.sub("", raw).rstrip()  # `#` starts a comment only where a token starts
        if depth == 0 and line.endswith("{"):
            head = line[:-1].strip()
            blocks[head] = []
        elif depth > 0:
            blocks[head].append(line)
        depth += line.count("{") - line.count("}")
        # Placeholders such as {$HTTPS_PORT} or {args[0]} open and close on one line.
        assert depth >= 0, raw
    assert depth == 0
    return blocks


def expanded(body: list[str], snippets: dict[str, list[str]]) -> list[str]:
    lines = []
    for line in body:
        imported = re.match(r"^\s*import\s+(\S+)", line)
        if imported and imported.group(1) in snippets:
            lines += expanded(snippets[imported.group(1)], snippets)
        else:
            lines.append(line)
    return lines


def https_sites() -> dict[str, list[str]]:
    blocks = top_level_blocks(CADDYFILE.read_text())
    snippets = {head[1:-1]: body for head, body in blocks.items() if head.startswith("(") and head.endswith(")")}
    return {head: expanded(body, snippets) for head, body in blocks.items() if head.endswith(":{$HTTPS_PORT}")}


def test_the_parse_finds_every_public_name_and_the_catch_all():
    assert set(https_sites()) == {"auth.localhost:{$HTTPS_PORT}", "mcp.localhost:{$HTTPS_PORT}",
                                  "cimd.localhost:{$HTTPS_PORT}", "api.localhost:{$HTTPS_PORT}", ":{$HTTPS_PORT}"}


@pytest.mark.parametrize("site", sorted(https_sites()))
def test_every_site_on_the_https_port_sends_hsts_for_a_year_with_subdomains(site: str):
    body = https_sites()[site]
    ages = [int(m.group(1)) for line in body if (m := HSTS.match(line))]
    assert ages, f"{site}: no Strict-Transport-Security header"
    assert min(ages) >= 31536000
    # Deferred: set when the response is written, over whatever the upstream (Keycloak) sent.
    header_block = "\n".join(body)
    assert re.search(r"header\s*\{[^}]*Strict-Transport-Security[^}]*\bdefer\b[^}]*\}", header_block), site
