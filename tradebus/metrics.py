"""Every Prometheus metric tradebus exports, declared once.

Labels never carry secrets or unbounded values (no ids, no URLs).
"""

from prometheus_client import Counter, Gauge, Histogram

UPSTREAM_EVENTS = Counter("tradebus_upstream_events", "Events received from an upstream API", ["source", "kind"])
PRODUCED = Counter("tradebus_produced", "Records acknowledged by Kafka", ["topic"])
DELIVERY_FAILED = Counter("tradebus_delivery_failed", "Records Kafka did not acknowledge", ["topic"])
DLQ = Counter("tradebus_dlq", "Records sent to the dead-letter topic", ["source", "reason"])
DROPPED = Counter("tradebus_dropped", "Events deliberately not published (duplicates, filtered)", ["source", "reason"])
RECONNECTS = Counter("tradebus_reconnects", "Upstream reconnects", ["source"])
GAPS = Counter("tradebus_gaps", "Possible upstream gaps reported", ["source", "kind"])
PRODUCER_QUEUE = Gauge("tradebus_producer_queue_messages", "Records waiting in the Kafka producer queue")
BACKPRESSURE_WAITS = Counter("tradebus_backpressure_waits", "Times a produce call waited for queue space")
EMIT_TO_ACK = Histogram(
    "tradebus_emit_to_ack_seconds",
    "Upstream event time to Kafka acknowledgement",
    ["source"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
UPSTREAM_CONNECTED = Gauge("tradebus_upstream_connected", "1 while the upstream stream is open", ["source"])

CONSUMED = Counter("tradebus_consumed", "Records consumed by a worker", ["worker", "topic"])
DEDUP_DROPPED = Counter("tradebus_dedup_dropped", "Duplicates dropped by the dedup worker", ["kind"])
STORE_ROWS = Counter("tradebus_store_rows", "Rows written by the store worker", ["table"])
STORE_BATCH_SECONDS = Histogram("tradebus_store_batch_seconds", "Store worker batch commit time")
ALERTS = Counter("tradebus_alerts", "Alerts fired, by sink and delivery status", ["rule", "sink", "status"])
ALERTS_SUPPRESSED = Counter("tradebus_alerts_suppressed", "Alerts suppressed within their cooldown", ["rule"])
CONSUMER_LAG = Gauge("tradebus_consumer_lag", "Consumer group lag", ["group", "topic"])
WORKER_ERRORS = Counter("tradebus_worker_errors", "Records a worker could not process", ["worker", "reason"])
WORKER_BATCH_SECONDS = Histogram(
    "tradebus_worker_batch_seconds",
    "Time a worker takes to process and commit one batch",
    ["worker"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Producers: receipt of an upstream event to its Kafka acknowledgement, and when the upstream last said anything
# (age of the last event = time() - tradebus_upstream_last_event_timestamp_seconds).
PUBLISH_LATENCY = Histogram(
    "tradebus_publish_latency_seconds",
    "Receipt of an upstream event by the producer to its Kafka acknowledgement",
    ["source"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
UPSTREAM_LAST_EVENT = Gauge(
    "tradebus_upstream_last_event_timestamp_seconds", "Unix time of the last event (pings included) from an upstream", ["source"]
)
