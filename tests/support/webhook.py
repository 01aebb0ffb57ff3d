"""A real webhook receiver on 127.0.0.1 (the network guard lets loopback through)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Webhook:
    """Records each POSTed JSON body. hang: hold every request until `release` is set, then answer
    `status`, or with drop_after_hang close the connection unanswered (as a dying server does)."""

    def __init__(self, status: int = 200, hang: bool = False, drop_after_hang: bool = False):
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.paths.append(self.path)
                hook.bodies.append(body)
                hook.arrived.set()
                if hang:
                    hook.release.wait(60)
                    if drop_after_hang:
                        self.close_connection = True
                        return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook/SECRET-TOKEN"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
