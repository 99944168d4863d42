"""A real HTTP receiver on loopback for webhook tests and the bench: verifies every signature with standardwebhooks."""

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError


class QuietServer(ThreadingHTTPServer):
    request_queue_size = 256  # the sender opens dozens of connections at once

    def handle_error(self, request, client_address):
        pass  # a sender that timed out and hung up is what some tests and the bench do on purpose


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    payload: dict | None


@dataclass
class Receiver:
    """Answers `status` (or hangs for `delay` seconds first); keeps what came, and how many signatures failed."""

    secrets: list[str] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    keep: bool = True
    received: list[Received] = field(default_factory=list)
    count: int = 0
    bad_signatures: int = 0
    active: int = 0
    most_active: int = 0  # the most requests it was answering at once
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would
            # The headers and the body go out in two writes: with Nagle on, the second waits for the sender's
            # delayed ACK (40 ms on Linux), and every request took 40 ms longer than it should.
            disable_nagle_algorithm = True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.active += 1
                    receiver.most_active = max(receiver.most_active, receiver.active)
                headers = {k.lower(): v for k, v in self.headers.items()}
                payload = None
                for secret in receiver.secrets:
                    try:
                        payload = Webhook(secret).verify(body, headers)
                        break
                    except WebhookVerificationError:
                        continue
                if receiver.delay:
                    threading.Event().wait(receiver.delay)
                with receiver.lock:
                    receiver.active -= 1
                    receiver.count += 1
                    if payload is None:
                        receiver.bad_signatures += 1
                    if receiver.keep:
                        receiver.received.append(Received(headers, body, payload))
                answer = b"ok" if payload is not None else b"bad signature"
                try:
                    self.send_response(receiver.status if payload is not None else 401)
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender timed out first (a hanging receiver on purpose)

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
