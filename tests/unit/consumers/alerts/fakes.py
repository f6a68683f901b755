"""Local stand-ins for the alert sinks' servers: an HTTP server that answers
with scripted status codes and records what it received, and a minimal SMTP
responder on a socket (Python 3.11 has no smtpd; aiosmtpd is not a
dependency). Both listen on a free port on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookServer:
    """POST bodies are recorded (with their arrival time) when the scripted
    status is 2xx; `script` statuses are used in order, then `default`."""

    def __init__(self, script: list[int] | None = None, default: int = 200, delay_s: float = 0.0, path: str = "/hook"):
        self.script = list(script or [])
        self.default = default
        self.delay_s = delay_s
        self.path = path
        self.received: list[dict] = []
        self.attempts = 0
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if server.delay_s:
                    time.sleep(server.delay_s)
                with server.lock:
                    server.attempts += 1
                    status = server.script.pop(0) if server.script else server.default
                    if 200 <= status < 300:
                        server.received.append({"at": time.time(), "path": self.path, "body": json.loads(body)})
                        server.arrived.notify_all()
                reply = b"{}"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "WebhookServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count and time.monotonic() < deadline:
                self.arrived.wait(0.05)
            return list(self.received)


class SmtpServer:
    """Speaks just enough SMTP for smtplib: EHLO (with AUTH PLAIN when
    credentials are set), AUTH, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def __init__(self, username: str | None = None, password: str | None = None, starttls: bool = False):
        self.username, self.password, self.starttls = username, password, starttls
        self.messages: list[dict] = []
        self.auth_attempts: list[str] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write((line + "\r\n").encode())
                self.wfile.flush()

            def handle(self):
                self.reply("220 fake ESMTP")
                sender, rcpts, authed = None, [], outer.username is None
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    line = raw.decode().rstrip("\r\n")
                    verb = line.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        extensions = ["250-fake"]
                        if outer.starttls:
                            extensions.append("250-STARTTLS")
                        if outer.username is not None:
                            extensions.append("250-AUTH PLAIN")
                        extensions.append("250 8BITMIME")
                        for ext in extensions:
                            self.reply(ext)
                    elif verb == "AUTH":
                        token = line.split(" ")[2] if len(line.split(" ")) > 2 else ""
                        _, user, password = base64.b64decode(token).decode().split("\0")
                        outer.auth_attempts.append(user)
                        if user == outer.username and password == outer.password:
                            authed = True
                            self.reply("235 2.7.0 Authentication successful")
                        else:
                            self.reply("535 5.7.8 Authentication credentials invalid")
                    elif verb == "MAIL":
                        if not authed:
                            self.reply("530 5.7.0 Authentication required")
                            continue
                        sender = line.split(":", 1)[1].strip()
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        rcpts.append(line.split(":", 1)[1].strip())
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        data = []
                        while True:
                            chunk = self.rfile.readline().decode()
                            if chunk in (".\r\n", ""):
                                break
                            data.append(chunk)
                        outer.messages.append({"from": sender, "to": rcpts, "data": "".join(data)})
                        self.reply("250 OK queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 Bye")
                        return
                    else:
                        self.reply("502 Command not implemented")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "SmtpServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
