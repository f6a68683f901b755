import pytest

from tradebus.config import CommonSettings, ConfigError, Env, KafkaSettings, database_url
from tradebus.redaction import redact


def test_defaults_work_on_the_local_stack():
    s = CommonSettings.from_env(Env({}))
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert s.kafka.schema_registry_url == "http://127.0.0.1:8081/apis/ccompat/v7"


@pytest.mark.parametrize("name,value", [
    ("TRADEBUS_HTTP_PORT", "eighty"),
    ("TRADEBUS_HTTP_PORT", "70000"),
    ("TRADEBUS_SCHEMA_REGISTRY_URL", "ftp://x"),
    ("TRADEBUS_KAFKA_SECURITY_PROTOCOL", "TLS"),
    ("TRADEBUS_LOG_FORMAT", "xml"),
])
def test_bad_values_name_the_setting(name, value):
    with pytest.raises(ConfigError) as err:
        CommonSettings.from_env(Env({name: value}))
    assert name in str(err.value)


def test_security_passthrough_and_password_redacted():
    k = KafkaSettings.from_env(Env({
        "TRADEBUS_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "TRADEBUS_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "TRADEBUS_KAFKA_SASL_USERNAME": "svc",
        "TRADEBUS_KAFKA_SASL_PASSWORD": "pw-very-secret",
        "TRADEBUS_KAFKA_SSL_CA_LOCATION": "/etc/ca.pem",
    }))
    conf = k.client_conf()
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["ssl.ca.location"] == "/etc/ca.pem"
    assert "pw-very-secret" not in redact(f"conf={conf}")


def test_database_url_scheme_checked_and_password_registered():
    with pytest.raises(ConfigError, match="TRADEBUS_DATABASE_URL"):
        database_url(Env({"TRADEBUS_DATABASE_URL": "mysql://x"}))
    url = database_url(Env({"TRADEBUS_DATABASE_URL": "postgresql://u:dbpw-4242@h/db"}))
    assert "dbpw-4242" not in redact(f"oops {url} and dbpw-4242")
