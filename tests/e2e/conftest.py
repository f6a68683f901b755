"""End-to-end fault suite: the whole pipeline on the real local stack.

Markers: every test here is `e2e`; long ones are also `slow` (the short CI
version is `pytest tests/e2e -m "not slow"`); the ones that restart a service
of the shared local stack (Kafka, PostgreSQL) are also `stack_restart`.
Each scenario writes tests/e2e/results/<scenario>.json; a table of all of them
is printed at the end of the session.
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import SESSION_RESULTS, Pipeline, PipelineOptions, ensure_stack, summary_row


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: end-to-end scenario (all processes, real stack)")
    config.addinivalue_line("markers", "slow: long end-to-end scenario (left out of the short CI run)")
    config.addinivalue_line("markers", "stack_restart: restarts a service of the shared local stack")


def pytest_collection_modifyitems(items):
    for item in items:
        path = str(item.fspath)
        if "/tests/e2e/" in path or "/tests/security/" in path:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack():
    ensure_stack()


@pytest.fixture
def pipeline(stack, tmp_path, request):
    """pipeline(options) -> a started Pipeline named after the test; closed at teardown."""
    made: list[Pipeline] = []

    def make(options: PipelineOptions | None = None, scenario: str | None = None) -> Pipeline:
        name = scenario or request.node.name.replace("[", "-").replace("]", "").removeprefix("test_")
        p = Pipeline(name, tmp_path / name, options)
        made.append(p)
        return p.start()

    yield make
    for p in made:
        p.close()
        p.keep_logs()  # pytest recycles its tmp dirs; results/logs/<scenario>/ stays, passed or not


def pytest_terminal_summary(terminalreporter):
    if not SESSION_RESULTS:
        return
    rows = [summary_row(r) for r in SESSION_RESULTS]
    cols = ["scenario", "ok", "emitted", "stored", "dups_dropped", "dlq", "missing", "excused", "secs"]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    terminalreporter.section("tradebus end-to-end scenarios")
    terminalreporter.write_line("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        terminalreporter.write_line("  ".join(str(r[c]).ljust(widths[c]) for c in cols))
    terminalreporter.write_line("emitted: upstream data events (HTI idea versions + Anthid live events); stored: data rows; "
                                "dups_dropped: raw - unique - dedup DLQ; details in tests/e2e/results/<scenario>.json")
