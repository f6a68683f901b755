"""Pieces every producer shares: reconnect backoff and the process runner
(observability, stop handling, flush and the final status)."""
