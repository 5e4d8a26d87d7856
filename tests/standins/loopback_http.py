"""A quiet HTTP server on 127.0.0.1, on a port the kernel picks, serving in a thread: the plumbing
every loopback stand-in (a Harbor nginx, a backend, a health endpoint) shares. What it answers is
the handler class its user writes."""

from __future__ import annotations

import http.server
import ssl
import threading


class LoopbackHttp:
    """Serves `handler` (a BaseHTTPRequestHandler subclass) until `stop()`; its request log stays quiet.
    With `tls` (a server context) it speaks HTTPS."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> None:
        quiet = type(handler.__name__, (handler,), {"log_message": lambda self, *args: None})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), quiet)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
