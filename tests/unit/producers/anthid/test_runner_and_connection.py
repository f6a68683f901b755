"""producers.common.runner with a stub source and publisher, and how a
connection classifies gRPC failures (fatal credentials vs. retry)."""

from __future__ import annotations

import threading

import grpc
import pytest

from producers.anthid.connection import EXIT_AUTH, Connection
from producers.anthid.settings import AnthidProducerSettings
from producers.common.runner import FatalSourceError, run_producer
from tradebus.config import CommonSettings, Env
from tradebus.kafka import UnsentRecordsError
from tradebus.redaction import register_secret

SECRET = "sk-unit-secret-7788"


class StubProducer:
    acked = 0

    def __init__(self, unsent=0):
        self.unsent = unsent

    def kafka_reachable(self):
        return True

    def poll(self, timeout=0):
        return 0


class StubPublisher:
    def __init__(self, unsent=0):
        self.producer = StubProducer(unsent)
        self.statuses = []
        self.flushed = False

    def status(self, kind, message=None, **kwargs):
        self.statuses.append(kind)

    def flush(self, timeout):
        self.flushed = True
        if self.producer.unsent:
            raise UnsentRecordsError(f"{self.producer.unsent} records still unacknowledged after {timeout:.0f}s flush")


class StubSource:
    name = "stub"
    data_topics = []

    def __init__(self, fail: Exception | None = None):
        self.fail = fail
        self.calls = []
        self.stop_event = None

    def readiness_checks(self):
        return {"stub": lambda: True}

    def connect(self, publisher, stop):
        self.calls.append("connect")
        self.stop_event = stop

    def run(self, beat):
        self.calls.append("run")
        beat()
        if self.fail:
            raise self.fail
        self.stop_event.wait(5)

    def stop(self):
        self.calls.append("stop")

    def cleanup(self):
        self.calls.append("cleanup")


def common():
    return CommonSettings.from_env(Env({"TRADEBUS_HTTP_PORT": "0", "TRADEBUS_SHUTDOWN_TIMEOUT_SECONDS": "1"}))


def test_clean_stop_flushes_and_reports_stopped():
    source, publisher, stop = StubSource(), StubPublisher(), threading.Event()
    threading.Timer(0.2, stop.set).start()
    assert run_producer(common(), source, stop=stop, publisher=publisher) == 0
    assert publisher.statuses == ["started", "stopped"] and publisher.flushed
    assert source.calls[:2] == ["connect", "run"] and source.calls.index("stop") < source.calls.index("cleanup")


def test_records_left_after_the_flush_are_loud(capsys):
    stop = threading.Event()
    stop.set()
    assert run_producer(common(), StubSource(), stop=stop, publisher=StubPublisher(unsent=7)) == 1
    assert "7 records still unacknowledged" in capsys.readouterr().err


def test_failed_deliveries_during_the_run_are_loud(capsys):
    stop, publisher = threading.Event(), StubPublisher()
    publisher.producer.failed = 2
    stop.set()
    assert run_producer(common(), StubSource(), stop=stop, publisher=publisher) == 1
    assert "2 records failed delivery" in capsys.readouterr().err


def test_fatal_source_error_exit_code_and_redacted_message(capsys):
    register_secret(SECRET)
    source = StubSource(fail=FatalSourceError(f"refused key {SECRET}", exit_code=3))
    assert run_producer(common(), source, stop=threading.Event(), publisher=StubPublisher()) == 3
    err = capsys.readouterr().err
    assert "tradebus produce stub: refused key ***" in err and SECRET not in err


class FakeRpcError(grpc.RpcError):
    def __init__(self, code, details):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


class FakeSession:
    stalled = False
    cancel_reason = None


def connection():
    settings = AnthidProducerSettings.from_env(Env({"TRADEBUS_ANTHID_API_KEY": SECRET}))
    return Connection(0, settings, ("",), handler=None, stop=threading.Event())


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED])
def test_refused_credentials_are_fatal_with_exit_3(code):
    with pytest.raises(FatalSourceError) as info:
        connection()._classify(FakeRpcError(code, f"bad key {SECRET}"), FakeSession())
    assert info.value.exit_code == EXIT_AUTH
    assert code.name in str(info.value) and "TRADEBUS_ANTHID_API_KEY" in str(info.value) and SECRET not in str(info.value)


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  grpc.StatusCode.INTERNAL, grpc.StatusCode.CANCELLED])
def test_other_failures_are_retried(code):
    assert connection()._classify(FakeRpcError(code, "x"), FakeSession()).startswith(code.name)


def test_stall_is_named():
    session = FakeSession()
    session.stalled = True
    assert connection()._classify(FakeRpcError(grpc.StatusCode.CANCELLED, ""), session) == "no heartbeat for 30s"
