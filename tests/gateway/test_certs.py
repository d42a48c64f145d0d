"""The lab CA and the gateway's TLS certificate: created once, reused, reissued when names change."""

from __future__ import annotations

import ssl

from cryptography import x509

from gateway.transport.certs import ensure_lab_pki


def test_creates_and_reuses(tmp_path):
    pki = ensure_lab_pki(tmp_path, ["127.0.0.1", "localhost"])
    first = pki.server_cert.read_bytes()
    ca_first = pki.ca_cert.read_bytes()
    assert (pki.ca_key.stat().st_mode & 0o777) == 0o600
    again = ensure_lab_pki(tmp_path, ["localhost"])
    assert again.server_cert.read_bytes() == first and again.ca_cert.read_bytes() == ca_first
    # A new listening address reissues the server certificate from the same CA.
    third = ensure_lab_pki(tmp_path, ["127.0.0.1", "::1"])
    assert third.server_cert.read_bytes() != first and third.ca_cert.read_bytes() == ca_first
    cert = x509.load_pem_x509_certificate(third.server_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}


def test_chain_verifies_with_ssl(tmp_path):
    pki = ensure_lab_pki(tmp_path, ["127.0.0.1"])
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki.server_cert, pki.server_key)
    client = ssl.create_default_context(cafile=str(pki.ca_cert))
    assert client.cert_store_stats()["x509_ca"] == 1
