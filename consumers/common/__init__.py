"""What every consumer worker (dedup, store, alerts) shares.

* :class:`BatchWorker` (``worker.py``): the consumer loop with manual commits,
  batching by size or age, rebalance callbacks (the pending batch is committed
  before partitions are revoked), SIGTERM -> finish the batch, commit, close,
  exit 0; /metrics /healthz /readyz; the consumer-lag gauge.
* :class:`WorkerSettings`, :func:`add_worker_arguments`, :func:`env_from_args`
  (``settings.py``): ``--group/--batch-size/--flush-ms/...`` over
  ``TRADEBUS_<WORKER>_GROUP/_BATCH_SIZE/_FLUSH_MS``.
* :class:`DeadLetters`, :func:`is_poison` (``dead_letters.py``): DeadLetter records for poison
  input, and telling poison (the record's fault) from a transient registry error.
* :func:`run_worker`: the CLI glue (logging, stop handlers, exit code).

A minimal worker::

    class Printer(BatchWorker):
        def process(self, batch):
            for msg in batch:
                print(msg.value())
            self.commit_offsets(batch)   # after the work is durable

    settings = WorkerSettings.from_env(env, "printer", batch_size=100, flush_ms=200)
    Printer(common, settings, [names(topic)]).run()
"""

from consumers.common.dead_letters import DeadLetters, is_poison
from consumers.common.settings import WorkerSettings, add_worker_arguments, env_from_args
from consumers.common.worker import BatchWorker, first_offsets, next_offsets
from consumers.common.run import run_worker

__all__ = [
    "BatchWorker", "DeadLetters", "is_poison", "WorkerSettings", "add_worker_arguments", "env_from_args",
    "first_offsets", "next_offsets", "run_worker",
]
