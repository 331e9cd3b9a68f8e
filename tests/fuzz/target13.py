"""Coverage-guided fuzz targets (atheris/libFuzzer) for DTLS 1.3: its parsers and the
engine.

    python tests/fuzz/target13.py NAME [libFuzzer flags] [CORPUS_DIR ...]

``make fuzz`` (tests/fuzz/run.py) runs them beside target.py's, seeded from
:func:`seeds13` (``--write-seeds DIR``); tests/test_dtls13_fuzz_targets.py runs them
over their seeds and mutations in every test pass. The contract is target.py's:
parsers may raise only errors from ``webrtc_secure.errors``.

- ``records13``: ``split_datagram`` with and without a connection ID length, then
  every ciphertext record through a ReceiveEpoch of each suite (unmasking, sequence
  reconstruction, AEAD, inner plaintext), and every plaintext record's fragment
  through the ACK parser;
- ``messages13``: the first octet picks a TLS 1.3 message or extension parser;
- ``engine13``: the whole engine (DtlsConnection with DTLS 1.3): the input is a run
  of length-prefixed datagrams; the first octet says whether they go to a fresh
  server or to a client that has sent its hello. ``receive_datagram`` must never
  raise, and a failed engine must hold a typed error.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import atheris
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports(include=["webrtc_secure"]):
    from webrtc_secure.certificate import Certificate
    from webrtc_secure.dtls import handshake13, keys13
    from webrtc_secure.dtls.connection import DtlsConnection, State
    from webrtc_secure.dtls.events import ApplicationData, HandshakeComplete
    from webrtc_secure.dtls.messages13 import (
        Certificate13,
        CertificateRequest13,
        CertificateVerify13,
        ClientHello13,
        EncryptedExtensions,
        KeyUpdate,
        ServerHello13,
        parse_cookie,
        parse_key_share_client,
        parse_key_share_hrr,
        parse_key_share_server,
        parse_supported_versions_client,
        parse_supported_versions_server,
        parse_transcript_message,
        parse_u16_list,
    )
    from webrtc_secure.dtls.records13 import (
        CiphertextRecord,
        ReceiveEpoch,
        SendEpoch,
        encode_plaintext_record,
        parse_ack,
        split_datagram,
    )
    from webrtc_secure.dtls.suites13 import SUITES13
    from webrtc_secure.errors import DtlsError, WebrtcSecureError

_KEYS = {
    suite: keys13.traffic_keys(
        suite.hash_name, bytes(keys13.digest_size(suite.hash_name)), suite.key_length
    )
    for suite in SUITES13.values()
}

MESSAGE_PARSERS: list[Callable[[bytes], object]] = [
    lambda b: ClientHello13.parse(b, dtls=True),
    lambda b: ClientHello13.parse(b, dtls=False),
    ServerHello13.parse,
    EncryptedExtensions.parse,
    CertificateRequest13.parse,
    Certificate13.parse,
    CertificateVerify13.parse,
    KeyUpdate.parse,
    parse_transcript_message,
    parse_key_share_client,
    parse_key_share_server,
    parse_key_share_hrr,
    parse_supported_versions_client,
    parse_supported_versions_server,
    parse_u16_list,
    parse_cookie,
]


def _typed_only(fn: Callable[[], object]) -> None:
    with contextlib.suppress(WebrtcSecureError):
        fn()


def records13(data: bytes) -> None:
    for cid_length in (0, 4):
        parsed, _clean = split_datagram(data, cid_length)
        for record in parsed:
            if isinstance(record, CiphertextRecord):
                for suite, keys in _KEYS.items():
                    # the seeds' keys: genuine records (and mutations the AEAD
                    # accepts) reach the code after authentication too
                    receiver = ReceiveEpoch(suite, keys, record.epoch_bits)
                    try:
                        opened = receiver.open_record(record)
                    except WebrtcSecureError:
                        assert receiver.highest_sequence == -1  # a refusal commits nothing
                        continue
                    assert opened.content_type in (21, 22, 23, 26)
                    assert receiver.highest_sequence == opened.sequence_number
            else:
                _typed_only(lambda f=record.fragment: parse_ack(f))


def messages13(data: bytes) -> None:
    if not data:
        return
    parser = MESSAGE_PARSERS[data[0] % len(MESSAGE_PARSERS)]
    _typed_only(lambda: parser(data[1:]))


def _fixture(name: str) -> Certificate:
    """A fixed ECDSA P-256 certificate (tests/fuzz/fixtures/README.md): the same in
    every process, so seeds written by one process (``--write-seeds``, saved
    regressions) still pass the fingerprint check in another."""
    pem = (Path(__file__).resolve().parent / "fixtures" / f"{name}_ecdsa.pem").read_bytes()
    cert_end = pem.index(b"-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----\n")
    return Certificate.from_pem(pem[:cert_end], pem[cert_end:])


_CLIENT_CERT = _fixture("client")
_SERVER_CERT = _fixture("server")


@contextlib.contextmanager
def _deterministic_signatures() -> Iterator[None]:
    """ECDSA with RFC 6979 nonces while a fuzz engine runs: the recorded flights then
    match what a fresh engine computes (its own CertificateVerify is part of the
    transcript), so a server replay gets past the client's CertificateVerify and
    Finished into the connected states. Restored afterwards: nothing else in the
    process signs deterministically."""
    original = handshake13.sign13

    def sign13(key: Any, scheme: int, content: bytes) -> bytes:
        if scheme in handshake13._ECDSA_HASH:
            algorithm = ec.ECDSA(handshake13._ECDSA_HASH[scheme], deterministic_signing=True)
            return bytes(key.sign(content, algorithm))
        return original(key, scheme, content)

    handshake13.sign13 = sign13
    try:
        yield
    finally:
        handshake13.sign13 = original


def _engine(is_client: bool) -> DtlsConnection:
    """Randoms and key shares are a function of the role (x25519 only: ML-KEM's
    encapsulation draws its own randomness), so a recorded flight still decrypts in
    a fresh engine and mutations reach the states behind it."""
    mine, theirs = (_CLIENT_CERT, _SERVER_CERT) if is_client else (_SERVER_CERT, _CLIENT_CERT)
    rng = random.Random(int(is_client))
    return DtlsConnection(
        is_client,
        mine,
        remote_fingerprints=theirs.fingerprints(),
        cookies=False,
        groups13=[0x001D],
        random=lambda n: rng.randbytes(n),
    )


def engine13(data: bytes) -> None:
    if not data:
        return
    with _deterministic_signatures():
        _engine13(data)


def _engine13(data: bytes) -> None:
    conn = _engine(is_client=bool(data[0] & 1))
    conn.connect(0.0)
    conn.datagrams_to_send(0.0)
    pos, now = 1, 0.0
    completed = closed = False
    while pos + 2 <= len(data):
        length = (data[pos] << 8) | data[pos + 1]
        datagram = data[pos + 2 : pos + 2 + length]
        pos += 2 + length
        now += 0.01
        conn.receive_datagram(datagram, now)
        conn.datagrams_to_send(now)
        timer = conn.get_timer()
        if timer is not None and timer <= now:
            conn.handle_timer(now)
        while (event := conn.next_event()) is not None:
            # nothing is delivered before the peer is authenticated (a server holds
            # a client's early data until its Finished), and nothing after the end
            assert not closed
            if isinstance(event, HandshakeComplete):
                assert not completed
                completed = True
            elif isinstance(event, ApplicationData):
                assert completed
            else:
                closed = True
    if conn.state is State.FAILED:
        assert isinstance(conn.error, DtlsError)


TARGETS13: dict[str, Callable[[bytes], None]] = {
    "records13": records13,
    "messages13": messages13,
    "engine13": engine13,
}


def _framed(datagrams: list[bytes]) -> bytes:
    return b"".join(len(d).to_bytes(2, "big") + d for d in datagrams)


def _handshake_seeds() -> list[bytes]:
    """A real 1.3 handshake's datagrams, as each side received them."""
    with _deterministic_signatures():
        return _record_handshake()


def _record_handshake() -> list[bytes]:
    client, server = _engine(True), _engine(False)
    client.connect(0.0)
    server.connect(0.0)
    to_server: list[bytes] = []
    to_client: list[bytes] = []
    for step in range(8):
        now = 0.01 * step
        for sender, receiver, log in ((client, server, to_server), (server, client, to_client)):
            for datagram in sender.datagrams_to_send(now):
                log.append(datagram)
                receiver.receive_datagram(datagram, now)
    # the client is connected once it sent its Finished: its first data, moved ahead
    # of that flight, is what a server sees when the path reorders them (it holds the
    # data until the Finished is verified)
    client.send(b"early data")
    early = client.datagrams_to_send(1.0)
    reordered = [to_server[0], *early, *to_server[1:]]
    return [
        b"\x00" + _framed(to_server),
        b"\x01" + _framed(to_client),
        b"\x00" + _framed(reordered),
    ]


def seeds13() -> dict[str, list[bytes]]:
    """Seed inputs: genuine records of every shape, and RFC 8448's messages."""
    import json

    datagrams = [encode_plaintext_record(22, b"\x01\x00\x00\x00" + bytes(40), 0)]
    for suite, keys in _KEYS.items():
        sender = SendEpoch(suite, keys, 3)
        for seq_length in (1, 2):
            for with_length in (True, False):
                datagrams.append(sender.protect(23, b"seed" * 8, 0, seq_length, with_length))
        datagrams.append(sender.protect(22, b"cid", connection_id=b"\x01\x02\x03\x04"))
    trace = json.loads(
        (Path(__file__).resolve().parents[1] / "vectors" / "rfc8448_simple_1rtt.json").read_text()
    )
    messages = []
    for i, hex_message in enumerate(trace["messages"].values()):
        body = bytes.fromhex(hex_message)[4:]
        messages.append(bytes([i % len(MESSAGE_PARSERS)]) + body)
    return {"records13": datagrams, "messages13": messages, "engine13": _handshake_seeds()}


def main() -> None:
    name = sys.argv[1]
    if name == "--write-seeds":
        base = Path(sys.argv[2])
        for target, items in seeds13().items():
            (base / target).mkdir(parents=True, exist_ok=True)
            for i, item in enumerate(items):
                (base / target / f"seed-{i:04d}").write_bytes(item)
        return
    atheris.Setup([sys.argv[0], *sys.argv[2:]], TARGETS13[name])
    os.environ.setdefault("PYTHONHASHSEED", "0")
    atheris.Fuzz()


if __name__ == "__main__":
    main()
