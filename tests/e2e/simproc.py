"""A simulator in a child process, steerable at run time (end-to-end tests only).

    python -m tests.e2e.simproc hti CONTROL_PORT [--start-paused] <every `tradebus sim hti` option>
    python -m tests.e2e.simproc anthid CONTROL_PORT [--start-paused] <every `tradebus sim anthid` option>

The simulator is parsed and configured by its own CLI module (same options,
same validation as `tradebus sim ...`) and then run in this process, so its
in-process fault API (simulators/*/README.md) can be driven over a tiny HTTP
endpoint on 127.0.0.1:CONTROL_PORT: ``POST /<action>?arg=value`` returns JSON.

Why not `tradebus sim` itself: the tests need to stop *generation* (not the
server) before they compare the store with the ledger, so every version the
ledger holds has had the chance to reach the producers; SIGTERM ends HTI
streams without draining what is queued for them. Restarts still go through
SIGTERM and a new process, exactly like the real command.

Actions (HTI): pause, resume, drop, stall, unstall, rate?value=, fail_5xx?seconds=,
inject_oversize?bytes=, inject_garbage, status.
Actions (Anthid): pause, resume, end_streams?code=, stall, unstall, unavailable?seconds=, status.

Injected versions are written to the ledger with ``kind`` "oversize" or
"garbage" (never "idea"), so the verify logic does not expect them in the store.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

READY_LINE = "simproc ready"
log = logging.getLogger("tests.e2e.simproc")


# ----------------------------------------------------------------------------- HTI

def hti_actions(sim) -> dict:
    from simulators.hti.ideas import IdeaVersion

    def inject(kind: str, mutate, history: bool) -> dict:
        with sim._emit_lock:  # the simulator's own ordering lock: ledger, history, streams
            base = sim.generator.next()
            idea = dict(base.idea)
            text = mutate(idea)
            version = IdeaVersion(base.version, idea, text, base.is_update, base.last_update_epoch, base.creation_epoch)
            sim.ledger._append({"kind": kind, "version": version.version, "idea_id": version.idea_id,
                                "LAST_UPDATE": idea.get("LAST_UPDATE"), "emitted_at": time.time(),
                                "bytes": len(text.encode("utf-8"))})
            if history:
                sim.hub.publish(version)
            else:  # streams only: /history would serve the intact idea dict
                with sim.hub._lock:
                    subscriptions = list(sim.hub._subscriptions.values())
                for subscription in subscriptions:
                    subscription.queue.put(version)
        return {"idea_id": version.idea_id, "LAST_UPDATE": idea.get("LAST_UPDATE"), "bytes": len(text.encode())}

    def oversize(q):
        size = int(q.get("bytes", 2_000_000))

        def mutate(idea):
            idea["DESCRIPTION"] = ("oversize " * (size // 9 + 1))[:size]
            return json.dumps(idea)

        return inject("oversize", mutate, history=True)

    def garbage(q):
        # One idea event whose data breaks the SSE framing: extra lines without a
        # field name, an unknown field, a bad retry value, then a cut-off JSON line.
        def mutate(idea):
            return "{\"ID\": \"broken\nno-colon-line\nunknown-field: x\nretry: soon\ndata: " + json.dumps(idea)[:40]

        return inject("garbage", mutate, history=False)

    return {
        "pause": lambda q: sim.pause_generation(),
        "resume": lambda q: sim.resume_generation(),
        "drop": lambda q: {"dropped": sim.drop_streams()},
        "stall": lambda q: sim.stall(True),
        "unstall": lambda q: sim.stall(False),
        "rate": lambda q: sim.set_rate(float(q["value"])),
        "fail_5xx": lambda q: sim.fail_5xx(float(q["seconds"])),
        "inject_oversize": oversize,
        "inject_garbage": garbage,
        "status": lambda q: {"streams": sim.stream_count(), "port": sim.port},
    }


def start_hti(args, paused: bool):
    from simulators.hti.cli import config_from_args
    from simulators.hti.simulator import HtiSimulator
    from tradebus.redaction import register_secret

    config = config_from_args(args)
    for profile in config.profiles:
        register_secret(profile.api_code)
    sim = HtiSimulator(config)
    if paused:
        sim.pause_generation()  # before start(): not one version is generated until resume
    return sim.start(), hti_actions


# -------------------------------------------------------------------------- Anthid

def anthid_actions(sim) -> dict:
    import grpc

    def pause(q):
        for emitter in sim._emitters:
            emitter._paused = lambda: True  # the emitter asks this before every event
        return {"emitters": len(sim._emitters)}

    def resume(q):
        for emitter in sim._emitters:
            emitter.__dict__.pop("_paused", None)
        return {"emitters": len(sim._emitters)}

    def end_streams(q):
        code = q.get("code")
        return {"ended": sim.end_all_streams(getattr(grpc.StatusCode, code) if code else None)}

    return {
        "pause": pause,
        "resume": resume,
        "end_streams": end_streams,
        "stall": lambda q: sim.set_stall(True),
        "unstall": lambda q: sim.set_stall(False),
        "unavailable": lambda q: sim.set_unavailable(float(q["seconds"])),
        "status": lambda q: {"connections": {o.name: sim.connections(o.id) for o in sim.organizations},
                             "accounts": {o.name: list(o.account_ids) for o in sim.organizations},
                             "port": sim.port},
    }


def start_anthid(args, paused: bool):
    from simulators.anthid.cli import config_from_args
    from simulators.anthid.server import AnthidSimulator
    from tradebus.redaction import register_secret

    config = config_from_args(args)
    for key in config.directory.keys():
        register_secret(key)
    sim = AnthidSimulator(config).start()
    if paused:
        # No stream is attached yet, so nothing has been generated; keep it that way.
        anthid_actions(sim)["pause"]({})
    return sim, anthid_actions


# ------------------------------------------------------------------------- control

def serve_control(port: int, actions: dict) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            parts = urlsplit(self.path)
            name = parts.path.strip("/")
            query = dict(parse_qsl(parts.query))
            if name not in actions:
                self._send(404, {"error": f"unknown action {name!r}", "actions": sorted(actions)})
                return
            try:
                result = actions[name](query)
            except Exception as exc:  # report, keep serving
                self._send(500, {"error": f"{type(exc).__name__}: {exc}"})
                return
            self._send(200, {"ok": True, "result": result})

        do_GET = do_POST  # noqa: N815

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] not in ("hti", "anthid"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, control_port, rest = argv[0], int(argv[1]), argv[2:]
    paused = "--start-paused" in rest
    rest = [a for a in rest if a != "--start-paused"]

    from tradebus.config import ConfigError
    from tradebus.lifecycle import install_stop_handlers
    from tradebus.observability import setup_logging

    if kind == "hti":
        from simulators.hti.cli import register
    else:
        from simulators.anthid.cli import register
    parser = argparse.ArgumentParser(prog=f"simproc {kind}")
    register(parser)
    args = parser.parse_args(rest)
    setup_logging(os.environ.get("TRADEBUS_LOG_LEVEL", "INFO"), os.environ.get("TRADEBUS_LOG_FORMAT", "json"))
    stop = install_stop_handlers()
    try:
        sim, make_actions = start_hti(args, paused) if kind == "hti" else start_anthid(args, paused)
    except (ConfigError, OSError) as exc:
        print(f"simproc {kind}: {exc}", file=sys.stderr, flush=True)
        return 2
    control = serve_control(control_port, make_actions(sim))
    mode = "tls" if getattr(sim.config, "tls_cert", None) else "plaintext"
    print(f"{READY_LINE} {kind} port={sim.port} control={control_port} ({mode})", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        control.shutdown()
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
