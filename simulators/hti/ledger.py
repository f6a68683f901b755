"""Append-only JSON-lines record of what the simulator generated.

One line per generated idea version (not per stream), written and flushed
before the version is handed to any stream, so a consumer can never hold a
version the ledger lacks::

    {"kind": "idea", "version": 7, "idea_id": "HTI11_TB_AMD_M5_20260422_043000",
     "LAST_UPDATE": "2026-04-22 04:37:59 EST", "update": false,
     "emitted_at": 1776861479.123456, "json": "{\"ID\": ...}"}

``json`` is the single-line data text of the ``idea`` event. Deliberately
broken events (``--malformed-every``) are separate lines, one per stream that
got one, and never count as ideas::

    {"kind": "malformed", "stream": 3, "emitted_at": 1776861480.5, "data": "{\"ID\": \"HTI1"}
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from simulators.hti.ideas import IdeaVersion


class Ledger:
    def __init__(self, path: str | Path | None = None, *, keep_in_memory: bool = True):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._memory: list[dict] | None = [] if keep_in_memory else None
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # line buffered: flushed per line

    def record_idea(self, version: IdeaVersion, emitted_at: float) -> None:
        self._append({"kind": "idea", "version": version.version, "idea_id": version.idea_id,
                      "LAST_UPDATE": version.idea["LAST_UPDATE"], "update": version.is_update,
                      "emitted_at": emitted_at, "json": version.text})

    def record_malformed(self, stream_id: int, data: str, emitted_at: float) -> None:
        self._append({"kind": "malformed", "stream": stream_id, "emitted_at": emitted_at, "data": data})

    def _append(self, entry: dict) -> None:
        line = json.dumps(entry) + "\n"
        with self._lock:
            if self._file is not None:
                self._file.write(line)
            if self._memory is not None:
                self._memory.append(entry)

    def entries(self) -> list[dict]:
        with self._lock:
            if self._memory is not None:
                return list(self._memory)
        if self.path is None or not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
