"""cimd-host: make the agents' keys and render what https://cimd.localhost serves.

    python -m cimd_host --state .local render [--sandbox]
    python -m cimd_host --state .local rotate --agent demo

The origin and the agent's callback port come from CIMD_ORIGIN and AGENT_CALLBACK_PORT (compose/.env,
which `make` loads), or from --origin and --callback-port.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import cimd
from .keys import KeyDirectory

# Each key directory under .local/keys and where its public half is published. `machine-admin`
# is the only machine client whose service account holds mcp-admin; `mcp-server` is the MCP
# server's own confidential client (token introspection, private_key_jwt).
PUBLISHED = {"demo": "agents/demo", "machine": "agents/machine", "machine-admin": "agents/machine-admin",
             "mcp-server": "services/mcp-server"}
AGENTS = tuple(PUBLISHED)
SERVICES = frozenset({"mcp-server"})


def key_directory(state: Path, name: str) -> KeyDirectory:
    return KeyDirectory(state / "keys" / name, readable_in_container=name in SERVICES)


# Documents for third-party clients, one data file each (cimd-host/clients/README.md).
CLIENTS_DIR = Path(__file__).resolve().parents[2] / "clients"


def _write(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(body)
    os.chmod(tmp, 0o644)
    tmp.replace(path)


def render(state: Path, origin: str, callback_port: int, *, sandbox: bool = False) -> list[Path]:
    """Render the public files; create keys that do not exist yet. Idempotent. `sandbox` adds the
    demo agent's Bearer-allowed twin document, which only the sandbox's tests use."""
    public = state / "cimd-public"
    written = []
    for agent, where in PUBLISHED.items():
        keys = key_directory(state, agent)
        keys.ensure()
        target = public / where / "jwks.json"
        _write(target, json.dumps(keys.jwks(), indent=2).encode() + b"\n")
        written.append(target)
    url = cimd.metadata_url(origin, "demo")
    target = public / "agents" / "demo" / "metadata.json"
    _write(target, cimd.validate(url, cimd.demo_agent_document(origin, callback_port)))
    written.append(target)
    if sandbox:
        url = cimd.metadata_url(origin, cimd.BEARER_TWIN)
        target = public / "agents" / cimd.BEARER_TWIN / "metadata.json"
        _write(target, cimd.validate(url, cimd.demo_agent_document(origin, callback_port, require_dpop=False)))
        written.append(target)
    for data in sorted(CLIENTS_DIR.glob("*.json")):
        document = cimd.third_party_document(origin, data.stem, json.loads(data.read_text()))
        target = public / "clients" / data.stem / "metadata.json"
        _write(target, cimd.validate(cimd.client_url(origin, data.stem), document))
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cimd-host")
    parser.add_argument("--state", type=Path, default=Path(".local"))
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="create missing keys, write metadata documents and JWKS")
    r.add_argument("--sandbox", action="store_true",
                   help="also the demo agent's Bearer-allowed twin document (the sandbox's tests only)")
    rot = sub.add_parser("rotate", help="add a new key for an agent and sign with it from now on")
    rot.add_argument("--agent", choices=AGENTS, default="demo")
    rot.add_argument("--keep", type=int, default=2, help="how many newest keys stay published (default 2)")
    for command in (r, rot):
        command.add_argument("--origin", default=os.environ.get("CIMD_ORIGIN"))
        command.add_argument("--callback-port", type=int, default=os.environ.get("AGENT_CALLBACK_PORT"))
    args = parser.parse_args(argv)
    if not args.origin or not args.callback_port:
        parser.error("set CIMD_ORIGIN and AGENT_CALLBACK_PORT (make loads them from compose/.env) "
                     "or pass --origin and --callback-port")
    args.callback_port = int(args.callback_port)

    if args.command == "rotate":
        new = key_directory(args.state, args.agent).rotate(keep=args.keep)
        render(args.state, args.origin, args.callback_port)
        published = len(key_directory(args.state, args.agent).keys())
        print(f"{args.agent}: signing with new key {new.kid}; {published} keys published")
        return 0
    for path in render(args.state, args.origin, args.callback_port, sandbox=args.sandbox):
        print(f"rendered {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
