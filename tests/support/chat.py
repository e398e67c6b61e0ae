"""What the chat tests share: a console that records what the user would see, and a local HTTP
server for a stand-in chat-completions endpoint (the external LLM is the one thing not real)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder:
    """The chat's console: answers (stdout) and notes (stderr), kept for assertions."""

    def __init__(self) -> None:
        self.answers: list[str] = []
        self.notes: list[str] = []

    def answer(self, text: str) -> None:
        self.answers.append(text)

    def note(self, text: str) -> None:
        self.notes.append(text)


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` on a loopback port for the block; yields the base URL of its `/v1`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # listening once constructed
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
