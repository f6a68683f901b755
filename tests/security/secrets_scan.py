"""Looking for secrets in everything a tradebus process lets out."""

from __future__ import annotations

import secrets as _secrets
from dataclasses import dataclass, field


def make_secret(label: str) -> str:
    """Distinctive, long enough for the redactor (>= 4 chars), never a substring of ordinary text."""
    return f"sec{label}{_secrets.token_hex(10)}"


@dataclass
class SecretScan:
    needles: dict[str, str]  # what it is -> the exact text that must never appear
    leaks: list[str] = field(default_factory=list)
    scanned: dict[str, int] = field(default_factory=dict)  # where -> bytes scanned

    def scan(self, where: str, data: bytes | str) -> None:
        blob = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
        self.scanned[where] = self.scanned.get(where, 0) + len(blob)
        for name, text in self.needles.items():
            needle = text.encode()
            at = blob.find(needle)
            if at >= 0:
                context = blob[max(0, at - 160): at + len(needle) + 40].decode("utf-8", "replace")
                self.leaks.append(f"{name} in {where}: ...{context}...")
