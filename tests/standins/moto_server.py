"""moto's server (AWS APIs on loopback) for tests that drive boto3 as the operator's machine does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.standins.daemons import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@contextmanager
def moto_server() -> Iterator[str]:
    """Yields the server's URL (http://127.0.0.1:<port>); stopped afterwards."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
