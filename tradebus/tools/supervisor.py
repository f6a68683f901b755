"""Runs a set of tradebus processes as children and stops them cleanly:
SIGTERM in reverse start order, a grace period, then SIGKILL. Used by the
demo and the end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests


@dataclass
class ChildSpec:
    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    http_port: int | None = None


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen
    log_path: Path

    def health(self) -> str:
        if self.process.poll() is not None:
            return f"exited({self.process.returncode})"
        if not self.spec.http_port:
            return "running"
        try:
            r = requests.get(f"http://127.0.0.1:{self.spec.http_port}/readyz", timeout=0.5)
            return "ready" if r.status_code == 200 else "not-ready"
        except requests.RequestException:
            return "starting"


class Supervisor:
    def __init__(self, log_dir: Path, base_env: dict[str, str] | None = None):
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.base_env = {**os.environ, **(base_env or {})}
        self.children: list[Child] = []

    def start(self, spec: ChildSpec) -> Child:
        log_path = self.log_dir / f"{spec.name}.log"
        env = {**self.base_env, **spec.env}
        if spec.http_port:
            env["TRADEBUS_HTTP_PORT"] = str(spec.http_port)
        log_file = open(log_path, "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "tradebus.cli", *spec.args], env=env, stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
        )
        child = Child(spec, process, log_path)
        self.children.append(child)
        return child

    def stop_all(self, grace_s: float = 40.0) -> dict[str, int]:
        codes = {}
        for child in reversed(self.children):
            codes[child.spec.name] = self.stop(child, grace_s)
        return codes

    @staticmethod
    def stop(child: Child, grace_s: float) -> int:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
            try:
                child.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
        return child.process.returncode

    def alive(self) -> list[str]:
        return [c.spec.name for c in self.children if c.process.poll() is None]


def wait_http_ready(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=0.5).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.3)
    return False
