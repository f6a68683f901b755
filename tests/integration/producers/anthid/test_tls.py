"""TLS by default: the producer's channel verifies the server against the
CA file (TRADEBUS_ANTHID_CA_FILE), and refuses a server its roots do not
trust. Session level against the simulator serving TLS; no Kafka needed."""

from __future__ import annotations

import subprocess

import grpc
import pytest

from producers.anthid.channel import call_metadata, open_channel
from producers.anthid.session import StreamSession
from producers.anthid.settings import AnthidProducerSettings
from tests.integration.producers.anthid.conftest import API_KEY
from tradebus.config import Env
from tradebus.protos import pb


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A throw-away CA and a server certificate for 127.0.0.1."""
    d = tmp_path_factory.mktemp("tls")

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=tradebus test CA",
            "-keyout", "ca.key", "-out", "ca.pem")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
            "-extfile", "san.ext", "-out", "server.pem")
    return d


def first_event(settings: AnthidProducerSettings):
    channel = open_channel(settings)
    session = StreamSession(channel, call_metadata(settings), heartbeat_timeout_s=30).open()
    try:
        session.subscribe("", [pb.EVENT_TYPE_BROKER_TRADE], pb.ORDER_DELIVERY_LIVE)
        for _raw, event in session:
            return event
    finally:
        session.close()
        channel.close()


def test_tls_with_ca_file_attaches(start_sim, certificates):
    sim = start_sim(rate=5.0, tls_cert=str(certificates / "server.pem"), tls_key=str(certificates / "server.key"))
    settings = AnthidProducerSettings.from_env(Env({"TRADEBUS_ANTHID_API_KEY": API_KEY, "TRADEBUS_ANTHID_TARGET": sim.target,
                                                    "TRADEBUS_ANTHID_CA_FILE": str(certificates / "ca.pem")}))
    assert settings.tls
    assert first_event(settings).status.message == "subscribed"


def test_tls_refuses_an_untrusted_server(start_sim, certificates):
    sim = start_sim(rate=5.0, tls_cert=str(certificates / "server.pem"), tls_key=str(certificates / "server.key"))
    settings = AnthidProducerSettings.from_env(Env({"TRADEBUS_ANTHID_API_KEY": API_KEY, "TRADEBUS_ANTHID_TARGET": sim.target}))
    with pytest.raises(grpc.RpcError) as info:  # system roots do not know the test CA
        first_event(settings)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
