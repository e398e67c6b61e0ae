"""Benchmark: tool-call throughput of the MCP server with auth vs without, with DPoP-bound tokens
and a fresh proof per call (RFC 9449), vs the "JWKS client per request" verifier found in widely
copied tutorials, vs a peer (FastMCP with its own JWTVerifier), and an API-backed tool (list_notes:
token exchange, then the notes API) with the exchange cache vs exchanging on every call.

    make bench      (installs the peer's virtualenv first; then: uv run python -m tests.bench.tool_call_throughput)
    make bench BENCH_ARGS=--keycloak    (Keycloak's own exchange rate, against the running sandbox)

Each variant is its own server process on loopback, all driven one after the other, in
interleaved rounds, by the same load generator; a stand-in authorization server
(token_endpoint.py: metadata, JWKS, token exchange) and the real notes API app are two more
processes, over real HTTP. It prints tool calls/s per variant and the ratios measured in this run
(min / median / max of the per-round ratios), and exits 1 if auth / no-auth per server CPU-second
(median) is below TARGET (token validation must cost under 5 % of a tool call) or dpop / no-auth
below DPOP_TARGET (token validation and the proof's checks under 15 %).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import anyio.abc
import h11
import httpx2
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mcp_agent.dpop import DPoPKey, proof_claims
from mcp_server.dpop import thumbprint
from tests.bench.token_endpoint import CERTS_PATH, REALM_PATH
from tests.support.net import free_port

KID = "bench-key"
CLIENT_KID = "bench-mcp-server"
# dpop: the production app (MCP_DPOP=allowed, the default) with a DPoP-bound token (cnf.jkt) and a
# new proof for every call, made with the demo agent's own proof code (mcp_agent.dpop).
# dpop-rs256: the same, the client's proof key RSA 2048 and its proofs RS256 — a proof's signature is
# what a DPoP call adds most, and what it costs the server is the client's choice of algorithm
# (an RS256 signature verifies ~4x faster than an ES256 one; it signs ~9x slower: the client's cost).
# no-auth-control: a second, identical no-auth server. Its ratio to no-auth should be 1.00; how far
# its rounds stray from that is the noise floor of this machine and run, printed beside the targets.
OURS = ("no-auth", "auth", "dpop", "dpop-rs256", "jwks-per-request", "no-auth-control")
# list_notes: exchange (RFC 8693) at the stand-in token endpoint, then GET /notes at the notes API.
NOTES = ("notes-cached", "notes-exchange-per-call")
PEER = ("fastmcp-no-auth", "fastmcp-auth")
VARIANTS = OURS + NOTES + PEER
TARGET = 0.95  # auth / no-auth, per server CPU-second (median of the rounds)
DPOP_TARGET = 0.85  # dpop / no-auth, the same (issue 20: a proof's checks are two more signatures' worth)
ROOT = Path(__file__).resolve().parents[2]
PEER_SERVER = ROOT / "tests" / "bench" / "peer" / "fastmcp_server.py"
PEER_PYTHON = ROOT / ".local" / "bench" / "fastmcp" / "bin" / "python"


# --- server processes ------------------------------------------------------------------------


def serve_as(port: int, clients: str) -> None:
    """The stand-in authorization server (token_endpoint.py); its signing key from the environment."""
    import uvicorn

    from tests.bench.token_endpoint import create_app as token_endpoint

    app = token_endpoint(origin=f"http://127.0.0.1:{port}", signing_pem=os.environ["BENCH_SIGNING_PEM"], kid=KID,
                         clients=json.loads(clients))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_api(port: int, jwks_url: str, database: str) -> None:
    """The real notes API app (services/api), validating the exchanged tokens with the shared verifier."""
    import logging

    import uvicorn

    from notes_api.app import create_app as create_api
    from notes_api.config import Settings as ApiSettings

    logging.disable(logging.INFO)
    settings = ApiSettings(issuer=issuer_of(jwks_url),
                           url=f"http://127.0.0.1:{port}", jwks_url=jwks_url, database=Path(database))
    uvicorn.run(create_api(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False)


class JWKSClientPerRequestVerifier:
    """The anti-pattern: a fresh PyJWKClient (one JWKS download) for every request."""

    def __init__(self, jwks_url: str, resource: str, issuer: str) -> None:
        import httpx2

        from mcp_server.jwks import JWKSCache

        self.jwks_url = jwks_url
        self.resource = resource
        self.issuer = issuer
        # create_app runs a verifier's key cache in its lifespan; this one is never asked for a key.
        self.keys = JWKSCache(httpx2.AsyncClient(), issuer=issuer, jwks_url=jwks_url, algorithms=["RS256"],
                              min_refresh=30, max_age=3600)

    async def verify_token(self, token: str):
        from mcp.server.auth.provider import AccessToken

        try:
            key = jwt.PyJWKClient(self.jwks_url).get_signing_key_from_jwt(token)
            claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=self.resource, issuer=self.issuer)
        except jwt.PyJWTError:
            return None
        return AccessToken(token=token, client_id=claims["azp"], scopes=claims["scope"].split(),
                           expires_at=claims["exp"], resource=self.resource, subject=claims["sub"], claims=claims)


class RSAProofKey:
    """A DPoP client whose proof key is RSA and whose proofs are RS256 (the demo agent's are ES256):
    the claims mcp_agent.dpop.DPoPKey puts in a proof, another algorithm and key."""

    def __init__(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_jwk = {k: v for k, v in jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key(),
                                                                                as_dict=True).items() if k in ("kty", "n", "e")}
        self.thumbprint = thumbprint(self.public_jwk)

    def proof(self, method: str, url: str, *, access_token: str) -> str:
        return jwt.encode(proof_claims(method, url, access_token=access_token), self.private_key, algorithm="RS256",
                          headers={"typ": "dpop+jwt", "jwk": self.public_jwk})


def issuer_of(jwks_url: str) -> str:
    return jwks_url.removesuffix(CERTS_PATH.removeprefix(REALM_PATH))


def serve_mcp(variant: str, port: int, jwks_url: str, notes_api_url: str) -> None:
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
    settings = Settings(issuer=issuer_of(jwks_url), resource_url=f"http://127.0.0.1:{port}/mcp", jwks_url=jwks_url,
                        introspect_privileged=False)
    if variant in ("no-auth", "no-auth-control"):
        # The baseline: the same server and transport with no auth at all (not a production mode).
        server = MCPServer(name="mcp-auth-sandbox", instructions=INSTRUCTIONS)
        tools.register(server)
        app = transport_app(server, settings)
    elif variant in ("auth", "dpop", "dpop-rs256"):
        app = create_app(settings)
    elif variant in NOTES:
        # The production notes tools; the client key (MCP_CLIENT_KEY_ID/PEM) from the environment.
        # Without the cache: a margin longer than the exchanged token's lifetime, so no exchanged
        # token is ever reused (exchange.py) — the same code path, the cache never hit.
        margin = 600.0 if variant == "notes-exchange-per-call" else 30.0
        app = create_app(settings.model_copy(update={"notes_api_url": notes_api_url,
                                                     "exchange_margin_seconds": margin}))
    else:
        app = create_app(settings, verifier=JWKSClientPerRequestVerifier(jwks_url, settings.resource_url,
                                                                         settings.issuer))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- load generator -----------------------------------------------------------------------------


# With two or more CPUs, servers and load generator get separate cores, so the measurement is of
# the server, not of the two fighting over one core.
CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
SERVER_CPUS = set(CPUS[1:]) if len(CPUS) >= 2 else None
CLIENT_CPUS = {CPUS[0]} if len(CPUS) >= 2 else None


def spawn(*args: str, cpus: set[int] | None = None, command: list[str] | None = None,
          env: dict[str, str] | None = None) -> subprocess.Popen:
    def pin() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)

    command = command or [sys.executable, "-m", "tests.bench.tool_call_throughput"]
    # Key material (throwaway, made by this run) goes by environment, not on a command line.
    return subprocess.Popen([*command, *args], cwd=ROOT, preexec_fn=pin, env={**os.environ, **(env or {})})


def spawn_server(variant: str, port: int, jwks_url: str, notes_api_url: str, client_pem: str,
                 peer_python: Path, cpus: set[int] | None = SERVER_CPUS) -> subprocess.Popen:
    if variant in PEER:
        return spawn(variant.removeprefix("fastmcp-"), str(port), jwks_url, issuer_of(jwks_url), cpus=cpus,
                     command=[str(peer_python), str(PEER_SERVER)])
    env = {"MCP_CLIENT_KEY_ID": CLIENT_KID, "MCP_CLIENT_KEY_PEM": client_pem} if variant in NOTES else {}
    return spawn("serve-mcp", variant, str(port), jwks_url, notes_api_url, cpus=cpus, env=env)


def pin(pid: int, cpus: set[int] | None) -> None:
    """Every thread of a running process onto `cpus` (threads it starts later inherit it). Servers
    start on every core (their imports are not measured) and are pinned once they listen."""
    if not cpus:
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except (ProcessLookupError, FileNotFoundError):
            continue


def stop(processes: Iterable[subprocess.Popen]) -> None:
    """Terminate, then kill what has not ended 10 s later (a round must not leave a server behind)."""
    processes = list(processes)
    for p in processes:
        p.terminate()
    for p in processes:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def cpu_seconds(pid: int) -> float:
    """CPU time of a process so far: the sum of its threads' run time in nanoseconds
    (/proc/<pid>/task/*/schedstat), so that a short round is measured to the microsecond, not to
    the 10 ms clock tick of /proc/<pid>/stat (the fallback where schedstat is missing). A thread
    that ended before this reading is not in the sum; the servers' threads live as long as they do."""
    total, seen = 0, False
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
            seen = True
        except (OSError, ValueError, IndexError):
            continue
    if seen:
        return total / 1e9
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


WARM_UP = 100  # calls before each measurement: a server process is new each round (its JWKS, its caches)
PROOFS_PER_SECOND = 2500  # made ahead per second of a dpop round: more than one server core answers


class CallFailed(RuntimeError):
    """A call the benchmark made was not a successful tool call: it stops (never measures refusals)."""


async def measure(url: str, token: str, seconds: float, concurrency: int, pid: int,
                  tool: str = "get_time", dpop_key: DPoPKey | RSAProofKey | None = None,
                  expected_rate: float | None = None) -> tuple[float, float, int]:
    """(tool calls per second of wall time, tool calls per CPU-second of the server process, calls
    made including the warm-up). With `dpop_key`: `Authorization: DPoP` and a new proof per call.

    The load: `concurrency` keep-alive HTTP/1.1 connections, one request in flight on each, spoken
    with h11 over plain sockets rather than through an HTTP client library. The generator has one
    core and must keep the server's core saturated: an HTTP client that spends more CPU per call
    than the server leaves the server idle between requests, and an idle server spends more CPU per
    call (a wake-up per request instead of a batch), which the per-CPU-second figure would then
    report as the server's cost. `server busy` in the output shows that it stayed saturated."""
    target = urlsplit(url)
    if target.hostname is None or target.port is None:
        raise ValueError(f"benchmark URL needs a host and a port: {url}")
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": tool, "arguments": {}}}).encode()
    headers = [("host", target.netloc), ("accept", "application/json, text/event-stream"),
               ("content-type", "application/json"), ("mcp-protocol-version", "2025-11-25"),
               ("content-length", str(len(body))),
               ("authorization", f"{'DPoP' if dpop_key else 'Bearer'} {token}")]

    def request(proof: str | None = None) -> h11.Request:
        return h11.Request(method="POST", target=target.path, headers=headers + ([("dpop", proof)] if proof else []))

    # A fresh proof (new jti) for every call, as a DPoP client sends them: the server's replay
    # cache refuses a reused one. Made before the round starts, so that signing them (the client's
    # work) does not slow the load the server gets; if the round needs more, made as it goes.
    # They stay acceptable for MCP_DPOP_PROOF_MAX_AGE_SECONDS (60 s), far longer than a round.
    fixed = request() if dpop_key is None else None
    # As many as the round needs, with a margin: 1.5 x the rate of this variant's previous round
    # (an RS256 proof takes the client ~0.35 ms to sign).
    per_second = 1.5 * expected_rate if expected_rate else PROOFS_PER_SECOND
    ahead = [request(dpop_key.proof("POST", url, access_token=token))
             for _ in range(math.ceil(per_second * seconds) + WARM_UP)] if dpop_key is not None and seconds <= 30 else []

    def next_request() -> h11.Request:
        if fixed is not None:
            return fixed
        assert dpop_key is not None
        return ahead.pop() if ahead else request(dpop_key.proof("POST", url, access_token=token))

    async def call(stream: anyio.abc.SocketStream, conn: h11.Connection) -> None:
        await stream.send(conn.send(next_request()) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
        status, chunks = 0, []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    conn.receive_data(await stream.receive(65536))
                except anyio.EndOfStream:
                    conn.receive_data(b"")
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise CallFailed(f"{url} {tool}: the server closed the connection")
        text = b"".join(chunks)
        # Any refusal or tool error stops the benchmark: it measures successful tool calls only.
        if status != 200 or b'"isError":true' in text.replace(b" ", b""):
            raise CallFailed(f"{url} {tool}: {status} {text[:300].decode(errors='replace')}")
        conn.start_next_cycle()

    done = 0
    streams = [await anyio.connect_tcp(target.hostname, target.port) for _ in range(concurrency)]
    try:
        connections = [(stream, h11.Connection(h11.CLIENT)) for stream in streams]
        for i in range(WARM_UP):  # warm-up (the first JWKS fetch, caches, the interpreter's specializations)
            await call(*connections[i % concurrency])
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        cpu_before = cpu_seconds(pid)

        async def worker(stream: anyio.abc.SocketStream, conn: h11.Connection) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await call(stream, conn)
                done += 1

        async with anyio.create_task_group() as tg:
            for connection in connections:
                tg.start_soon(worker, *connection)
        wall = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_before
    finally:
        for stream in streams:
            await stream.aclose()
    return done / wall, done / cpu, done + WARM_UP


def exchanges(as_origin: str) -> dict[str, int]:
    """Token exchanges the stand-in answered so far, per requesting client (its resource URL)."""
    return dict(httpx2.get(f"{as_origin}/stats").json())


def run(rounds: int, seconds: float, concurrency: int, peer_python: Path,
        variants: tuple[str, ...] = VARIANTS) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    # The MCP servers' own client key (private_key_jwt at the token endpoint), as the realm registers it.
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_pem = client_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()
    client_jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(client_key.public_key())), "kid": CLIENT_KID}
    # The DPoP client's proof key (ES256, like the demo agent's); its tokens carry its thumbprint.
    dpop_key = DPoPKey(ec.generate_private_key(ec.SECP256R1()))
    proof_keys: dict[str, DPoPKey | RSAProofKey] = {"dpop": dpop_key, "dpop-rs256": RSAProofKey()}
    as_port, api_port = free_port(), free_port()
    as_origin = f"http://127.0.0.1:{as_port}"
    issuer = as_origin + REALM_PATH
    jwks_url = as_origin + CERTS_PATH
    api_url = f"http://127.0.0.1:{api_port}"
    ports = {v: free_port() for v in variants}
    resources = {v: f"http://127.0.0.1:{port}/mcp" for v, port in ports.items()}
    clients = {resources[v]: client_jwk for v in NOTES if v in resources}
    procs = [spawn("serve-as", str(as_port), json.dumps(clients), cpus=SERVER_CPUS,
                   env={"BENCH_SIGNING_PEM": pem.decode()})]
    pids: dict[str, int] = {}
    servers: dict[str, subprocess.Popen] = {}
    results: dict[str, list[float]] = {v: [] for v in variants}
    capacity: dict[str, list[float]] = {v: [] for v in variants}
    last_rate: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-notes-") as data:
        try:
            procs.append(spawn("serve-api", str(api_port), jwks_url, str(Path(data) / "notes.sqlite3"),
                               cpus=SERVER_CPUS))
            wait_listening(as_port)
            wait_listening(api_port)
            # Round 0 warms the load generator and the stand-ins up and is not counted. Then the
            # order alternates, forwards and backwards, so that a drift in the machine's speed over a
            # round favours no variant.
            for r in range(rounds + 1):
                # New server processes every round: something fixed at a process's start (where its
                # code and data land in memory, its string-hash seed) makes one process of a server a
                # few per cent faster or slower than another of the same server for its whole life —
                # two identical no-auth servers differed by 9-15 % per CPU-second, the same way in
                # nearly every round of one run. Restarted, that offset is drawn anew each round, and
                # the median of the per-round ratios is not one draw's.
                stop(servers.values())
                servers = {v: spawn_server(v, port, jwks_url, api_url, client_pem, peer_python, cpus=None)
                           for v, port in ports.items()}
                for variant, port in ports.items():
                    wait_listening(port)
                    pin(servers[variant].pid, SERVER_CPUS)
                    pids[variant] = servers[variant].pid
                for variant in (variants if r % 2 else variants[::-1]):
                    resource = resources[variant]
                    now = int(time.time())
                    # A new subject token each round: the cached variant exchanges once per round.
                    # RFC 9449 §6.1: a DPoP-bound token names its key by thumbprint (cnf.jkt), as Keycloak's do.
                    proof_key = proof_keys.get(variant)
                    bound = {"cnf": {"jkt": proof_key.thumbprint}} if proof_key is not None else {}
                    token = jwt.encode({"iss": issuer, "aud": resource, "sub": "bench", "azp": "bench",
                                        "typ": "Bearer", "scope": "mcp:tools", "iat": now, "exp": now + 3600, **bound},
                                       pem, algorithm="RS256", headers={"kid": KID})
                    tool = "list_notes" if variant in NOTES else "get_time"
                    before = exchanges(as_origin).get(resource, 0) if variant in NOTES else 0
                    rate, per_cpu, calls = anyio.run(measure, resource, token, seconds, concurrency, pids[variant],
                                                     tool, proof_key, last_rate.get(variant))
                    if variant in NOTES:
                        made = exchanges(as_origin).get(resource, 0) - before
                        expected = 1 if variant == "notes-cached" else calls
                        if made != expected:
                            raise RuntimeError(f"{variant}: {made} token exchanges for {calls} calls, expected {expected}")
                    last_rate[variant] = rate
                    shown = f"round {r}/{rounds}" if r else "warm-up   "
                    print(f"  {shown}  {variant:<24} {rate:8.1f} tool calls/s   "
                          f"{per_cpu:8.1f} per server CPU-second   server busy {rate / per_cpu:4.0%}", flush=True)
                    if r:
                        results[variant].append(rate)
                        capacity[variant].append(per_cpu)
        finally:
            stop([*procs, *servers.values()])
    return results, capacity


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "serve-as":
        serve_as(int(argv[1]), argv[2])
        return 0
    if argv and argv[0] == "serve-api":
        serve_api(int(argv[1]), argv[2], argv[3])
        return 0
    if argv and argv[0] == "serve-mcp":
        serve_mcp(argv[1], int(argv[2]), argv[3], argv[4])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--peer-python", type=Path, default=PEER_PYTHON,
                        help="python of FastMCP's virtualenv (make bench installs it)")
    parser.add_argument("--only", type=lambda text: tuple(text.split(",")), default=VARIANTS, metavar="V1,V2,...",
                        help=f"measure only these variants (of: {', '.join(VARIANTS)}); the targets need no-auth, auth, dpop")
    parser.add_argument("--keycloak", action="store_true",
                        help="instead: Keycloak's token-exchange rate against the running sandbox (keycloak_exchange.py)")
    args = parser.parse_args(argv)
    if args.keycloak:
        from tests.bench import keycloak_exchange

        return keycloak_exchange.run(args.rounds, args.seconds, args.concurrency)
    variants: tuple[str, ...] = tuple(v for v in VARIANTS if v in args.only)  # in the usual order
    if unknown := sorted(set(args.only) - set(VARIANTS)):
        parser.error(f"unknown variant(s): {', '.join(unknown)}")
    if set(PEER) & set(variants) and not args.peer_python.exists():
        print(f"bench: no FastMCP to compare with at {args.peer_python}: run `make bench`, which installs it",
              file=sys.stderr)
        return 2
    print(f"tool-call throughput: {args.rounds} rounds x {args.seconds:g} s per variant, "
          f"{args.concurrency} concurrent requests, {os.cpu_count()} CPUs")
    if CLIENT_CPUS:
        os.sched_setaffinity(0, CLIENT_CPUS)
        print(f"load generator on CPU {sorted(CLIENT_CPUS)}, servers on CPUs {sorted(SERVER_CPUS)}")
    results, capacity = run(args.rounds, args.seconds, args.concurrency, args.peer_python, variants)
    print("\nmedians                    tool calls/s   per server CPU-second   CPU per call   server busy")
    for v in variants:
        per_cpu = statistics.median(capacity[v])
        busy = statistics.median(r / c for r, c in zip(results[v], capacity[v], strict=True))
        print(f"  {v:<24} {statistics.median(results[v]):10.1f}   {per_cpu:12.1f}   {1e6 / per_cpu:12.0f} us   {busy:8.0%}")

    def ratios(series: dict[str, list[float]], a: str, b: str) -> list[float]:
        # Per-round ratios: each pair was measured in the same round, so drift between rounds cancels.
        return sorted(x / y for x, y in zip(series[a], series[b], strict=True))

    def shown(values: list[float]) -> str:
        return f"{values[0]:5.2f} {statistics.median(values):6.2f} {values[-1]:5.2f}"

    print("\nratios (this run; min median max of the per-round ratios)   throughput           per server CPU-second")
    rows = (("no-auth-control", "no-auth", "two identical servers: this run's noise floor"),
            ("auth", "no-auth", "ours: what token validation costs"),
            ("dpop", "no-auth", "ours: token validation and a DPoP proof per call"),
            ("dpop", "auth", "what the proof's checks add to a bearer token's"),
            ("dpop-rs256", "no-auth", "the same, the client's proofs RS256 instead of ES256"),
            ("fastmcp-auth", "fastmcp-no-auth", "FastMCP's JWTVerifier, the same"),
            ("auth", "fastmcp-auth", "end to end, both with auth"),
            ("no-auth", "fastmcp-no-auth", "end to end, neither with auth"),
            ("jwks-per-request", "no-auth", "a JWKS download per call"),
            ("notes-cached", "notes-exchange-per-call", "ours: what the exchange cache saves (*)"),
            ("notes-cached", "auth", "an API-backed call (cached exchange) vs a local tool (*)"))
    for a, b, note in rows:
        if a not in variants or b not in variants:
            continue
        print(f"  {a + ' / ' + b:<44} {shown(ratios(results, a, b))}   {shown(ratios(capacity, a, b))}   {note}")
    if set(NOTES) & set(variants):
        print("  (*) against a local stand-in token endpoint (tests/bench/token_endpoint.py), not Keycloak: the per\n"
              "      CPU-second ratio is the MCP server's own work only (assertion, request, checks vs a cache hit);\n"
              "      the throughput ratio also carries the stand-in's and the API's CPU on the same cores.\n"
              "      Keycloak's own token-exchange rate: --keycloak (against the running sandbox).")

    def median_ratio(a: str, b: str) -> float | None:
        return statistics.median(ratios(capacity, a, b)) if a in variants and b in variants else None

    ours, dpop = median_ratio("auth", "no-auth"), median_ratio("dpop", "no-auth")
    peer = median_ratio("fastmcp-auth", "fastmcp-no-auth")
    print("\nauth overhead per tool call (CPU): " + ", ".join(
        f"{name} {100 * (1 / value - 1):.1f} %" for name, value in (("ours", ours), ("with DPoP", dpop), ("FastMCP's", peer))
        if value is not None))
    met = True
    for name, got, target in (("auth", ours, TARGET), ("dpop", dpop, DPOP_TARGET)):
        if got is None:
            print(f"target: {name} / no-auth >= {target:.2f}x: not measured in this run (--only)")
            met = False
            continue
        met = met and got >= target
        print(f"target: {name} / no-auth >= {target:.2f}x per server CPU-second (median): {got:.2f}x, "
              f"{'met' if got >= target else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
