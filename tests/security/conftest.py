"""Security tests run the whole pipeline like tests/e2e (same harness, same fixtures)."""

from tests.e2e.conftest import pipeline, stack  # noqa: F401 - re-exported here


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: end-to-end scenario (all processes, real stack)")
    config.addinivalue_line("markers", "slow: long end-to-end scenario (left out of the short CI run)")
