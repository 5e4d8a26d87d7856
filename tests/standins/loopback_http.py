"""A plain HTTP server on 127.0.0.1 (a free port) for stand-ins whose GET answers are one function:
`answer(path, headers) -> (status, body)`, called on the server's threads."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable
from email.message import Message

Answer = Callable[[str, Message], tuple[int, bytes]]


class LoopbackHTTP:
    def __init__(self, answer: Answer) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status, body = answer(self.path, self.headers)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
