"""The benchmark's load generator (tool_call_throughput.measure): it speaks HTTP/1.1 with h11 over
plain keep-alive sockets, so it must count only successful tool calls — a refusal or a tool error
stops the benchmark instead of being measured — and read the server's CPU time from /proc."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_server.dpop import ProofChecker
from tests.bench.tool_call_throughput import WARM_UP, CallFailed, RSAProofKey, cpu_seconds, main, measure
from tests.support.authorization_server import serve
from tests.support.net import free_port

RESULT = {"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "12:00"}], "isError": False}}


async def answer(request: Request) -> JSONResponse:
    """200 with a tool result; 401 without the benchmark's token; a tool error for `broken`."""
    seen.append(dict(request.headers))
    call = json.loads(await request.body())
    if request.headers.get("authorization") != "Bearer the-token":
        return JSONResponse({"error": "invalid_token"}, status_code=401)
    if call["params"]["name"] == "broken":
        return JSONResponse({**RESULT, "result": {**RESULT["result"], "isError": True}})
    return JSONResponse(RESULT)


seen: list[dict[str, Any]] = []


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    port = free_port()
    for _ in serve(Starlette(routes=[Route("/mcp", answer, methods=["POST"])]), port):
        yield f"http://127.0.0.1:{port}/mcp"


@pytest.mark.anyio
async def test_it_counts_successful_tool_calls_over_keep_alive_connections(url: str) -> None:
    seen.clear()
    rate, per_cpu, calls = await measure(url, "the-token", 0.2, 2, os.getpid())
    assert rate > 0
    assert per_cpu > 0
    assert calls > WARM_UP  # the warm-up's and the round's
    assert len(seen) == calls
    assert {h["authorization"] for h in seen} == {"Bearer the-token"}
    assert {h["mcp-protocol-version"] for h in seen} == {"2025-11-25"}


@pytest.mark.anyio
async def test_a_refused_call_stops_the_benchmark(url: str) -> None:
    with pytest.raises(CallFailed, match="401"):
        await measure(url, "another-token", 0.2, 2, os.getpid())


@pytest.mark.anyio
async def test_a_tool_error_stops_the_benchmark(url: str) -> None:
    with pytest.raises(CallFailed, match="isError"):
        await measure(url, "the-token", 0.2, 2, os.getpid(), tool="broken")


def test_the_cpu_time_of_a_process_follows_what_it_spends() -> None:
    """The server's CPU time (its threads' run time, read from /proc) grows by what the process
    spends, as the process itself counts it. The kernel updates a running thread's figure at its
    scheduler events, so a reading may lag by a few milliseconds: 200 ms of work, 20 % tolerance."""
    before, own = cpu_seconds(os.getpid()), time.process_time()
    while time.process_time() - own < 0.2:
        sum(range(10_000))
    spent = time.process_time() - own
    assert abs((cpu_seconds(os.getpid()) - before) - spent) < 0.2 * spent


def test_the_rs256_proofs_pass_the_servers_checks_bound_to_their_key() -> None:
    key = RSAProofKey()
    url = "http://127.0.0.1:8000/mcp"
    accepted = ProofChecker().check(key.proof("POST", url, access_token="a.b.c"), method="POST", uri=url,
                                    access_token="a.b.c")
    assert accepted.thumbprint == key.thumbprint


def test_an_unknown_variant_is_refused_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--only", "no-auth,no-such-variant"])
    assert exited.value.code == 2
    assert "unknown variant(s): no-such-variant" in capsys.readouterr().err
