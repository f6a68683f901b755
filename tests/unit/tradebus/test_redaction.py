import logging

from tradebus.observability import RedactingJsonFormatter
from tradebus.redaction import redact, redact_url, register_secret


def test_stream_url_code_is_masked():
    url = "http://127.0.0.1:3500/client-api/hti/stream?api_code=140b17o794rA680-1Ba16t168C566&poll_seconds=2.0"
    safe = redact_url(url)
    assert "140b17o794rA680" not in safe
    assert "poll_seconds=2.0" in safe and "api_code=***" in safe


def test_database_password_is_masked():
    # Names unlike any secret another test registers in this process (the registry is global).
    assert redact("connect postgresql://alice:s3cr3tpw@db.example/appdb failed") == \
        "connect postgresql://alice:***@db.example/appdb failed"


def test_registered_secret_masked_in_log_and_traceback():
    register_secret("ZZ-secret-key-123")
    try:
        raise RuntimeError("bad key ZZ-secret-key-123")
    except RuntimeError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "using %s", ("ZZ-secret-key-123",), None)
        import sys
        record.exc_info = sys.exc_info()
    line = RedactingJsonFormatter().format(record)
    assert "ZZ-secret-key-123" not in line
    assert "***" in line


def test_header_shapes_masked():
    assert "abc12345" not in redact("metadata: ('x-api-key', 'abc12345')")
