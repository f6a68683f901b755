"""Settings of the HTI simulator.

Defaults marked "assumption" are choices the docs leave open (spec §11); each
one has a switch so producers can be tested against the alternatives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from simulators.hti.hub import HISTORY_ORDERS
from simulators.hti.profiles import Profile, ProfileRegistry
from tradebus.config import ConfigError

ERROR_BODIES = ("detail", "message", "text")
STREAM_AUTH_ERRORS = ("http", "event")
EXPIRY_ACTIONS = ("error", "close", "keep")
SSE_FRAMINGS = ("chunked", "close")

HISTORY_LIMIT_RANGE = (1, 50)
POLL_SECONDS_RANGE = (1.0, 10.0)


@dataclass
class SimConfig:
    profiles: list[Profile] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 3500  # the docs' examples; 0 picks a free port
    # Generation
    rate: float = 1.0  # idea versions per second; 0 = only emit_burst()
    seed: int | None = None
    update_probability: float = 0.2
    multiline_probability: float = 0.3  # share of new ideas with a multi-line DESCRIPTION
    fixed_est: bool = False  # assumption: wall-clock US Eastern labelled EST (O1)
    extra_field: bool = False  # add RISK_SCORE, a field producers do not know
    history_size: int = 500  # ideas the server keeps for /history
    ledger_path: Path | None = None
    ledger_in_memory: bool = True
    # API behaviour the docs leave open
    history_order: str = "last_update"  # assumption (O14): newest first by LAST_UPDATE
    default_history_limit: int = 10  # the official client's default (O4)
    default_poll_seconds: float = 2.0  # the official client's default (O4)
    clamp_params: bool = False  # assumption (O5): out-of-range limit/poll_seconds -> 422
    error_body: str = "detail"  # assumption (O6): {"detail": "..."}
    retry_after_header: bool = True  # 429 carries Retry-After (seconds)
    count_stream_connects: bool = True  # stream connects use the request budget (O10)
    stream_auth_errors: str = "http"  # §12: 401/403 with a JSON body before any event
    on_expiry: str = "error"  # expiry during an open stream: error event, then close
    # SSE details
    ping_seconds: float | None = None  # None = the stream's poll_seconds
    plain_sse: bool = False  # no retry:, id: or comment lines
    multiline_data: bool = False  # idea JSON spread over several data: lines
    sse_framing: str = "chunked"
    deliver_every_poll: bool = False  # hold ideas until the next poll tick instead of pushing at once
    # Faults
    end_stream_after: int | None = None  # close each stream after N events (ready and pings count)
    stall_after: float | None = None  # per stream, seconds after connect: send nothing, keep the socket
    malformed_every: int | None = None  # every Nth idea event is broken (extra, not instead of an idea)
    duplicate_every: int | None = None  # every Nth idea is sent twice
    error_event_after: int | None = None  # after N events send an error event, then close
    fail_5xx_for: float = 0.0  # seconds of 503 from start
    fail_429_for: float = 0.0  # seconds of 429 from start

    def validate(self) -> "SimConfig":
        _require(bool(self.profiles), "--api-code/--profiles: at least one API profile is needed")
        ProfileRegistry(self.profiles)  # rejects an API code used twice
        _require(math.isfinite(self.rate) and 0 <= self.rate <= 100_000, "--rate: must be between 0 and 100000")
        _require(0 <= self.update_probability < 1, "--update-probability: must be in [0, 1)")
        _require(0 <= self.multiline_probability <= 1, "--multiline-probability: must be in [0, 1]")
        _require(self.history_size >= 1, "--history-size: must be at least 1")
        _require(0 <= self.port <= 65535, "--port: must be between 0 and 65535")
        _require(self.history_order in HISTORY_ORDERS, f"--history-order: one of {', '.join(HISTORY_ORDERS)}")
        _require(self.error_body in ERROR_BODIES, f"--error-body: one of {', '.join(ERROR_BODIES)}")
        _require(self.stream_auth_errors in STREAM_AUTH_ERRORS, f"--stream-auth-errors: one of {', '.join(STREAM_AUTH_ERRORS)}")
        _require(self.on_expiry in EXPIRY_ACTIONS, f"--on-expiry: one of {', '.join(EXPIRY_ACTIONS)}")
        _require(self.sse_framing in SSE_FRAMINGS, f"--sse-framing: one of {', '.join(SSE_FRAMINGS)}")
        _require(self.ping_seconds is None or self.ping_seconds > 0, "--ping-seconds: must be positive")
        _require(self.stall_after is None or self.stall_after >= 0, "--stall-after: must not be negative")
        for name in ("end_stream_after", "error_event_after", "duplicate_every"):
            value = getattr(self, name)
            _require(value is None or value >= 1, f"--{name.replace('_', '-')}: must be at least 1")
        _require(self.malformed_every is None or self.malformed_every >= 2, "--malformed-every: must be at least 2")
        _require(self.fail_5xx_for >= 0 and self.fail_429_for >= 0, "--fail-5xx-for/--fail-429-for: must not be negative")
        return self


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
