"""Interoperability over HTTPS: zeep, trusting a CA bundle, against `sessiond serve` with
SESSIOND_TLS_CERT/SESSIOND_TLS_KEY.

The CA and the server certificate are made per test with the openssl command, as an operator
would: the certificate file holds the leaf first, then the CA (the chain).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests
import zeep

USER = "alice"
PASSWORD = "s3cret-pw"


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {proc.stderr.strip()}")


def make_pki(dir: Path) -> tuple[Path, Path, Path]:
    """A CA and a leaf for 127.0.0.1 signed by it: (CA file, chain file, key file)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=sessiond interop CA", cwd=dir)
    _openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=dir)
    (dir / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "server.pem",
             cwd=dir)
    chain = dir / "chain.pem"
    chain.write_text((dir / "server.pem").read_text() + (dir / "ca.pem").read_text())
    key = dir / "server.key"
    key.chmod(0o600)
    return dir / "ca.pem", chain, key


@pytest.fixture
def tls_server(sessiond, tmp_path):
    ca, chain, key = make_pki(tmp_path)
    sessiond.add_user(USER, PASSWORD)
    server = sessiond.serve(SESSIOND_TLS_CERT=str(chain), SESSIOND_TLS_KEY=str(key))
    return server, ca


@pytest.mark.parametrize("wsdl_attr,port", [("wsdl11", "SessionServiceSoap"),
                                            ("wsdl12", "SessionServiceSoap12")])
def test_zeep_with_a_ca_bundle_gets_validates_and_closes_a_session_over_https(
        tls_server, wsdl_attr, port):
    server, ca = tls_server
    assert server.endpoint.startswith("https://")
    session = requests.Session()
    session.verify = str(ca)
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment win over
    # Session.verify (psf/requests#3829); this machine sets them, so the session ignores them.
    session.trust_env = False
    client = zeep.Client(getattr(server, wsdl_attr),
                         transport=zeep.Transport(session=session, timeout=30))
    service = client.bind("SessionService", port)
    # The address zeep calls is the one the served WSDL gives: https, as the client came.
    assert service._binding_options["address"] == server.endpoint

    session_id = service.getSession(userId=USER, password=PASSWORD)
    assert session_id
    assert service.validateSession(sessionId=session_id) is True
    assert service.closeSession(sessionId=session_id) is True
    assert service.validateSession(sessionId=session_id) is False


def test_zeep_without_the_ca_refuses_the_server(tls_server):
    server, _ = tls_server
    session = requests.Session()
    session.verify = True  # the default roots only: our test CA is not among them
    session.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        zeep.Client(server.wsdl11, transport=zeep.Transport(session=session, timeout=30))
