"""TLS nodes (issue 9): https/wss with a private CA, and a clear failure without it.

A private CA and a server certificate for 127.0.0.1 are made at test time (``cryptography``,
from the ``test`` extra). FakeNode serves https/wss with the server's context; the client gets
``ssl_context=`` trusting the CA, or nothing (the system's CAs, which do not know it).
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import urllib3
from conftest import FAST, wait_until

from lavasync import (
    Client,
    NodeState,
    TLSError,
    TrackStartEvent,
)
from lavasync.testing import FakeNode
from lavasync.transport.rest import RestTransport

x509 = pytest.importorskip("cryptography.x509")
hashes = pytest.importorskip("cryptography.hazmat.primitives.hashes")
serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
ec = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ec")
NameOID = x509.oid.NameOID

GUILD = 817327181659111454
URLLIB3_1 = str(getattr(urllib3, "__version__", "2")).startswith("1.")
E = TypeVar("E")


class Pki:
    """Files of a private CA and a server certificate (signed by it) for 127.0.0.1."""

    def __init__(self, folder: Path) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lavasync test CA")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        self.ca = folder / "ca.pem"
        self.ca.write_bytes(ca_cert.public_bytes(pem))
        self.cert = folder / "server.pem"
        self.cert.write_bytes(cert.public_bytes(pem))
        self.key = folder / "server.key"
        self.key.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def fake(pki: Pki) -> Iterator[FakeNode]:
    with FakeNode(ssl_context=pki.server_context(), stats_interval=1.0) as node:
        yield node


def next_event(client: Client, cls: type[E], timeout: float = 5.0) -> E:
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        event = client.poll(remaining)
        if isinstance(event, cls):
            return event
    raise AssertionError(f"no {cls.__name__} within {timeout} s")


def test_fake_node_serves_https_and_wss(fake: FakeNode) -> None:
    assert fake.uri.startswith("https://127.0.0.1:")
    assert fake.ws_uri.startswith("wss://127.0.0.1:")


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_a_private_ca_node_works_over_https_and_wss(
    pki: Pki, fake: FakeNode, client: Client, host: str
) -> None:
    context = pki.client_context()
    uri = f"https://{host}:{fake.port}"
    if host == "127.0.0.1" and URLLIB3_1:
        # urllib3 1.x sends no SNI to an IP address, and a context that checks host names
        # then refuses to connect: said up front instead of as a connection error later
        with pytest.raises(ValueError, match=r"urllib3 1\.x"):
            client.add_node("tls", uri, password=fake.password, ssl_context=context)
        return
    node = client.add_node("tls", uri, password=fake.password, backoff=FAST, ssl_context=context)
    assert client.wait_ready(5) is node
    assert node.ws_url.startswith("wss://") and node.last_error is None
    assert fake.handshakes[0].accepted  # the WebSocket came over TLS
    track = fake.add_track("Over TLS", length=60_000)
    result = client.load(track.info.identifier)  # REST over https
    assert result.tracks[0].info.title == "Over TLS"
    player = client.player(GUILD)
    info = player.play(result.tracks[0])
    assert info.track is not None and info.track.info.title == "Over TLS"
    start = next_event(client, TrackStartEvent)  # the event came over wss
    assert start.guild_id == GUILD and start.track.info.title == "Over TLS"
    # the context given decides alone: no CA bundle was loaded into it behind our back
    assert context.cert_store_stats()["x509_ca"] == 1


def test_an_untrusted_certificate_fails_the_node_fast_with_its_cause(
    fake: FakeNode, client: Client
) -> None:
    node = client.add_node("tls", fake.uri, password=fake.password, backoff=FAST)
    with pytest.raises(TLSError) as info:
        client.wait_ready(5)
    error = info.value
    assert error.certificate
    assert "certificate verification failed" in str(error)
    assert isinstance(error.__cause__, ssl.SSLCertVerificationError)
    assert node.state is NodeState.FAILED
    assert node.error is error and node.last_error is error
    with pytest.raises(TLSError):
        node.wait_ready(1)
    thread = node._thread
    assert thread is not None
    wait_until(lambda: not thread.is_alive(), 5)  # no silent retry loop: the reader gave up
    assert fake.handshakes == []  # nothing got past TLS


def test_rest_uses_the_context_and_reports_tls_failures(pki: Pki, fake: FakeNode) -> None:
    uri = f"https://localhost:{fake.port}"
    with RestTransport(
        uri, fake.password, client_name="t/1", ssl_context=pki.client_context()
    ) as rest:
        assert rest.request("GET", "/version") == fake.version
        assert rest.request("GET", "/v4/info")["version"]["semver"] == fake.version
    with RestTransport(uri, fake.password, client_name="t/1") as untrusting:
        with pytest.raises(TLSError, match="CERTIFICATE_VERIFY_FAILED") as info:
            untrusting.request("GET", "/v4/info")
        assert info.value.certificate
    assert all(r.path != "/v4/info" or r.status == 200 for r in fake.requests)


def test_ssl_context_is_checked(fake: FakeNode, client: Client) -> None:
    with pytest.raises(ValueError, match="https"):
        client.add_node(
            "plain", "http://127.0.0.1:1", password="x", ssl_context=ssl.create_default_context()
        )
    with pytest.raises(ValueError, match="SSLContext"):
        client.add_node("bad", fake.uri, password="x", ssl_context="/etc/ca.pem")  # type: ignore[arg-type]
    assert client.nodes == []
