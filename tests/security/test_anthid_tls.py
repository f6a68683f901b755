"""TLS to the Anthid endpoint, verified against a CA the test creates (issue 8 §2).

The Anthid simulator serves TLS with a server certificate for 127.0.0.1 signed
by a fresh test CA. With TRADEBUS_ANTHID_CA_FILE = that CA the producer
attaches and every event reaches the store; with another CA it never attaches,
says why (certificate verification) and leaks neither the API key nor any key
material.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
import sys
import time
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.e2e.harness import REPO, PipelineOptions, free_port, write_result
from tests.security.secrets_scan import SecretScan, make_secret


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tradebus e2e")])


def make_ca(common_name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_server_cert(ca_key, ca_cert):
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def pem_cert(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_pki(directory: Path) -> dict[str, Path]:
    ca_key, ca_cert = make_ca("tradebus e2e test CA")
    server_key, server_cert = make_server_cert(ca_key, ca_cert)
    other_ca_key, other_ca_cert = make_ca("some other CA")
    files = {"ca": pem_cert(ca_cert), "server_cert": pem_cert(server_cert), "server_key": pem_key(server_key),
             "other_ca": pem_cert(other_ca_cert), "ca_key": pem_key(ca_key)}
    paths = {}
    for name, data in files.items():
        paths[name] = directory / f"{name}.pem"
        paths[name].write_bytes(data)
        paths[name].chmod(0o600)
    return paths


def key_material_needles(paths: dict[str, Path]) -> dict[str, str]:
    """Lines of base64 from each private key (any one of them in the output is a leak)."""
    needles = {}
    for name in ("server_key", "ca_key"):
        body = [line for line in paths[name].read_text().splitlines() if line and not line.startswith("-----")]
        for i, line in enumerate(body):
            needles[f"{name} PEM line {i}"] = line
    return needles


def test_anthid_tls_with_test_ca(pipeline, tmp_path):
    pki = write_pki(tmp_path)
    api_key = make_secret("tlskey")
    options = PipelineOptions(
        components=("sim-anthid", "consume-dedup", "consume-store", "produce-anthid"),
        anthid_key=api_key,
        anthid_args=("--tls-cert", str(pki["server_cert"]), "--tls-key", str(pki["server_key"])),
        extra_env={"produce-anthid": {"TRADEBUS_ANTHID_TLS": "true", "TRADEBUS_ANTHID_CA_FILE": str(pki["ca"])}},
    )
    p = pipeline(options, scenario="security_anthid_tls")
    assert "(tls)" in p.procs["sim-anthid"].log_text(), "the simulator does not serve TLS"
    p.resume()
    time.sleep(8)

    # The same producer with a CA that did not sign the server's certificate.
    port = free_port()
    env = {**p.procs["produce-anthid"].env, "TRADEBUS_ANTHID_CA_FILE": str(pki["other_ca"]),
           "TRADEBUS_HTTP_PORT": str(port), "TRADEBUS_INSTANCE_ID": "e2e-wrong-ca"}
    log_path = tmp_path / "produce-anthid-wrong-ca.log"
    with open(log_path, "wb") as log:
        wrong = subprocess.Popen([sys.executable, "-m", "tradebus.cli", "produce", "anthid"], env=env, cwd=REPO,
                                 stdout=log, stderr=subprocess.STDOUT)
    ever_ready, readyz = False, None
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline and wrong.poll() is None:
        try:
            r = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
            readyz = r.text
            ever_ready |= r.status_code == 200
        except requests.RequestException:
            pass
        time.sleep(0.5)
    wrong.terminate()
    wrong_exit = wrong.wait(40)
    wrong_output = log_path.read_text(errors="replace")

    p.settle()
    result = p.check(info={"wrong_ca": {"exit_code": wrong_exit, "ever_ready": ever_ready, "readyz": readyz}})
    scan = SecretScan({"Anthid API key": api_key, **key_material_needles(pki)})
    scan.scan("wrong-CA producer output", wrong_output)
    for name, proc in p.procs.items():
        scan.scan(f"log of {name}", proc.log_text())
    reasons = sorted({line[:300] for line in wrong_output.splitlines() if "reconnecting" in line or "ssl" in line.lower()
                      or "certificate" in line.lower() or "handshake" in line.lower()})[:3]
    result.report.update({"wrong_ca_reasons": reasons, "leaks": scan.leaks})
    write_result(result.report)

    raw = result.report["topics"]["raw"]
    assert sum(n for t, n in raw.items() if t.startswith("anthid.")) > 0, "no Anthid event came through TLS"
    assert not ever_ready, "the producer with the wrong CA reported ready"
    own_lines = [line for line in wrong_output.splitlines() if line.startswith("{") and "reconnecting" in line]
    assert own_lines and "CERTIFICATE_VERIFY_FAILED" in own_lines[0], \
        f"the producer's own log does not say the certificate failed verification:\n{wrong_output[-2000:]}"
    assert not scan.leaks, "\n".join(scan.leaks[:10])
    result.assert_ok()
