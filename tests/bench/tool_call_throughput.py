"""Benchmark: tool-call throughput of the MCP server with auth vs without, vs the "JWKS client per
request" verifier found in widely copied tutorials, and vs a peer: FastMCP with its own JWTVerifier.

    make bench      (installs the peer's virtualenv first; then: uv run python -m tests.bench.tool_call_throughput)

Each variant is its own server process on loopback, all driven one after the other, in
interleaved rounds, by the same load generator; the JWKS is served over real HTTP by another
process. It prints tool calls/s per variant and the ratios measured in this run (min / median /
max of the per-round ratios), and exits 1 if auth / no-auth per server CPU-second (median) is
below TARGET: token validation must cost under 5 % of a tool call.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx2
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.net import free_port

ISSUER = "https://auth.bench/realms/mcp"
KID = "bench-key"
OURS = ("no-auth", "auth", "jwks-per-request")
PEER = ("fastmcp-no-auth", "fastmcp-auth")
VARIANTS = OURS + PEER
TARGET = 0.95  # auth / no-auth, per server CPU-second (median of the rounds)
ROOT = Path(__file__).resolve().parents[2]
PEER_SERVER = ROOT / "tests" / "bench" / "peer" / "fastmcp_server.py"
PEER_PYTHON = ROOT / ".local" / "bench" / "fastmcp" / "bin" / "python"


# --- server processes ------------------------------------------------------------------------


def serve_jwks(port: int, public_jwk: str) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    body = {"keys": [json.loads(public_jwk)]}
    app = Starlette(routes=[Route("/certs", lambda _: JSONResponse(body))])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class JWKSClientPerRequestVerifier:
    """The anti-pattern: a fresh PyJWKClient (one JWKS download) for every request."""

    def __init__(self, jwks_url: str, resource: str) -> None:
        import httpx2

        from mcp_server.jwks import JWKSCache

        self.jwks_url = jwks_url
        self.resource = resource
        # create_app runs a verifier's key cache in its lifespan; this one is never asked for a key.
        self.keys = JWKSCache(httpx2.AsyncClient(), issuer=ISSUER, jwks_url=jwks_url, algorithms=["RS256"],
                              min_refresh=30, max_age=3600)

    async def verify_token(self, token: str):
        from mcp.server.auth.provider import AccessToken

        try:
            key = jwt.PyJWKClient(self.jwks_url).get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=self.resource, issuer=ISSUER)
        except jwt.PyJWTError:
            return None
        return AccessToken(token=token, client_id=claims["azp"], scopes=claims["scope"].split(),
                           expires_at=claims["exp"], resource=self.resource, subject=claims["sub"], claims=claims)


def serve_mcp(variant: str, port: int, jwks_url: str) -> None:
    import logging

    import uvicorn
    from mcp.server import MCPServer

    from mcp_server import tools
    from mcp_server.app import INSTRUCTIONS, create_app, transport_app
    from mcp_server.config import Settings

    # No log line per request, for any variant (the peer too): formatting and writing one would
    # dominate the measurement and is not token validation. The access log's other work stays.
    logging.disable(logging.INFO)
    # No AS to introspect at, and the load is get_time (never introspected): privileged tools
    # (server_stats) are served on local validation alone here, which a deployment must not do.
    settings = Settings(issuer=ISSUER, resource_url=f"http://127.0.0.1:{port}/mcp", jwks_url=jwks_url,
                        introspect_privileged=False)
    if variant == "no-auth":
        # The baseline: the same server and transport with no auth at all (not a production mode).
        server = MCPServer(name="mcp-auth-sandbox", instructions=INSTRUCTIONS)
        tools.register(server)
        app = transport_app(server, settings)
    elif variant == "auth":
        app = create_app(settings)
    else:
        app = create_app(settings, verifier=JWKSClientPerRequestVerifier(jwks_url, settings.resource_url))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- load generator -----------------------------------------------------------------------------


# With two or more CPUs, servers and load generator get separate cores, so the measurement is of
# the server, not of the two fighting over one core.
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
SERVER_CPUS = set(CPUS[1:]) if len(CPUS) >= 2 else None
CLIENT_CPUS = {CPUS[0]} if len(CPUS) >= 2 else None


def spawn(*args: str, cpus: set[int] | None = None, command: list[str] | None = None) -> subprocess.Popen:
    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    command = command or [sys.executable, "-m", "tests.bench.tool_call_throughput"]
    return subprocess.Popen([*command, *args], cwd=ROOT, preexec_fn=pin)


def spawn_server(variant: str, port: int, jwks_url: str, peer_python: Path) -> subprocess.Popen:
    if variant in PEER:
        return spawn(variant.removeprefix("fastmcp-"), str(port), jwks_url, ISSUER, cpus=SERVER_CPUS,
                     command=[str(peer_python), str(PEER_SERVER)])
    return spawn("serve-mcp", variant, str(port), jwks_url, cpus=SERVER_CPUS)


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(url: str, token: str, seconds: float, concurrency: int, pid: int) -> tuple[float, float]:
    """(tool calls per second of wall time, tool calls per CPU-second of the server process)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_time", "arguments": {}}}
    headers = {"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream",
               "mcp-protocol-version": "2025-11-25"}
    done = 0
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(limits=limits, timeout=30) as client:
        for _ in range(20):  # warm-up (and the first JWKS fetch)
            response = await client.post(url, json=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: {response.status_code} {response.text}")
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        cpu_before = cpu_seconds(pid)

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                response = await client.post(url, json=body, headers=headers)
                assert response.status_code == 200, response.text
                done += 1

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
        wall = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_before
        return done / wall, done / cpu


def run(rounds: int, seconds: float, concurrency: int,
        peer_python: Path) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())),
                  "kid": KID, "use": "sig", "alg": "RS256"}
    jwks_port = free_port()
    jwks_url = f"http://127.0.0.1:{jwks_port}/certs"
    procs = [spawn("serve-jwks", str(jwks_port), json.dumps(public_jwk), cpus=SERVER_CPUS)]
    ports = {v: free_port() for v in VARIANTS}
    pids: dict[str, int] = {}
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    capacity: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        wait_listening(jwks_port)
        for variant, port in ports.items():
            procs.append(spawn_server(variant, port, jwks_url, peer_python))
            pids[variant] = procs[-1].pid
        for port in ports.values():
            wait_listening(port)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        for r in range(rounds):
            for variant, port in ports.items():
                resource = f"http://127.0.0.1:{port}/mcp"
                now = int(time.time())
                token = jwt.encode({"iss": ISSUER, "aud": resource, "sub": "bench", "azp": "bench", "typ": "Bearer",
                                    "scope": "mcp:tools", "iat": now, "exp": now + 3600}, pem, algorithm="RS256",
                                   headers={"kid": KID})
                rate, per_cpu = anyio.run(measure, resource, token, seconds, concurrency, pids[variant])
                results[variant].append(rate)
                capacity[variant].append(per_cpu)
                print(f"  round {r + 1}/{rounds}  {variant:<18} {rate:8.1f} tool calls/s   "
                      f"{per_cpu:8.1f} per server CPU-second", flush=True)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)
    return results, capacity


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "serve-jwks":
        serve_jwks(int(argv[1]), argv[2])
        return 0
    if argv and argv[0] == "serve-mcp":
        serve_mcp(argv[1], int(argv[2]), argv[3])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--peer-python", type=Path, default=PEER_PYTHON,
                        help="python of FastMCP's virtualenv (make bench installs it)")
    args = parser.parse_args(argv)
    if not args.peer_python.exists():
        print(f"bench: no FastMCP to compare with at {args.peer_python}: run `make bench`, which installs it",
              file=sys.stderr)
        return 2
    print(f"tool-call throughput: {args.rounds} rounds x {args.seconds:g} s per variant, "
          f"{args.concurrency} concurrent requests, {os.cpu_count()} CPUs")
    if CLIENT_CPUS:
        os.sched_setaffinity(0, CLIENT_CPUS)
        print(f"load generator on CPU {sorted(CLIENT_CPUS)}, servers on CPUs {sorted(SERVER_CPUS)}")
    results, capacity = run(args.rounds, args.seconds, args.concurrency, args.peer_python)
    print("\nmedians              tool calls/s   per server CPU-second   CPU per call")
    for v in VARIANTS:
        per_cpu = statistics.median(capacity[v])
        print(f"  {v:<18} {statistics.median(results[v]):10.1f}   {per_cpu:12.1f}   {1e6 / per_cpu:12.0f} us")

    def ratios(series: dict[str, list[float]], a: str, b: str) -> list[float]:
        # Per-round ratios: each pair was measured in the same round, so drift between rounds cancels.
        return sorted(x / y for x, y in zip(series[a], series[b], strict=True))

    def shown(values: list[float]) -> str:
        return f"{values[0]:5.2f} {statistics.median(values):6.2f} {values[-1]:5.2f}"

    print("\nratios (this run; min median max of the per-round ratios)   throughput         per server CPU-second")
    rows = (("auth", "no-auth", "ours: what token validation costs"),
            ("fastmcp-auth", "fastmcp-no-auth", "FastMCP's JWTVerifier, the same"),
            ("auth", "fastmcp-auth", "end to end, both with auth"),
            ("no-auth", "fastmcp-no-auth", "end to end, neither with auth"),
            ("jwks-per-request", "no-auth", "a JWKS download per call"))
    for a, b, note in rows:
        print(f"  {a + ' / ' + b:<34} {shown(ratios(results, a, b))}   {shown(ratios(capacity, a, b))}   {note}")
    ours = statistics.median(ratios(capacity, "auth", "no-auth"))
    peer = statistics.median(ratios(capacity, "fastmcp-auth", "fastmcp-no-auth"))
    print(f"\nauth overhead per tool call (CPU): ours {100 * (1 / ours - 1):.1f} %, FastMCP's {100 * (1 / peer - 1):.1f} %")
    verdict = "met" if ours >= TARGET else "NOT met"
    print(f"target: auth / no-auth >= {TARGET:.2f}x per server CPU-second (median): {ours:.2f}x, {verdict}")
    return 0 if ours >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
