import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from tests.conftest import load_vector, vector_path
from webrtc_secure import Certificate, CertificateError, Fingerprint, SdpError


def test_fingerprints_match_rfc8122_vector() -> None:
    v = load_vector("rfc8122_fingerprint.json")
    cert = Certificate.load(vector_path("example_cert.pem"), vector_path("example_cert_key.pem"))
    assert cert.der.hex() == v["example_certificate_der_hex"]
    for alg, entry in v["fingerprints"].items():
        assert cert.fingerprint(alg) == entry["fingerprint"]
        fp = Fingerprint.parse(entry["sdp_attribute"].split(":", 1)[1])
        assert fp.matches(cert.der)
        assert f"a=fingerprint:{fp}" == entry["sdp_attribute"]


@pytest.mark.parametrize("name", ["lowercase_hex", "no_colons", "truncated"])
def test_non_conforming_fingerprints_refused(name: str) -> None:
    line = load_vector("rfc8122_fingerprint.json")["non_conforming_examples"][name]
    with pytest.raises(SdpError):
        Fingerprint.parse(line.split(":", 1)[1])


def test_upper_case_hash_name_accepted() -> None:
    cert = Certificate.generate()
    fp = Fingerprint.parse(f"SHA-256 {cert.fingerprint()}")
    assert fp.algorithm == "sha-256" and fp.matches(cert.der)


def test_generated_certificate_round_trips_through_pem() -> None:
    cert = Certificate.generate()
    again = Certificate.from_pem(cert.cert_pem(), cert.key_pem())
    assert again.fingerprint() == cert.fingerprint()
    assert not again.is_rsa
    other = Certificate.generate()
    assert not Fingerprint.parse(f"sha-256 {other.fingerprint()}").matches(cert.der)


def test_mismatched_key_refused() -> None:
    a, b = Certificate.generate(), Certificate.generate()
    with pytest.raises(CertificateError):
        Certificate.from_pem(a.cert_pem(), b.key_pem())
    with pytest.raises(CertificateError):
        Certificate.from_pem(b"garbage", b"garbage")


def test_certificate_keeps_der_and_key_only_and_parses_on_demand() -> None:
    """A peer's certificate lives as long as the peer: no parsed copy is kept (memory
    per peer), and the parsed one built on demand is the same certificate."""
    certificate = Certificate.generate()
    assert not hasattr(certificate, "__dict__")
    parsed = certificate.x509
    assert parsed.public_bytes(Encoding.DER) == certificate.der
    again = Certificate.from_pem(certificate.cert_pem(), certificate.key_pem())
    assert again.der == certificate.der
    assert again.fingerprint() == certificate.fingerprint()
