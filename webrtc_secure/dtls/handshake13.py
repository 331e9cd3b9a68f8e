"""The DTLS 1.3 handshake and record engine (RFC 9147, RFC 8446 4), client and server.

Sans-I/O like the rest of ``dtls/``: :class:`Dtls13` takes datagrams and ``now`` in and
leaves datagrams in ``outbox``, events in the connection's queue and a deadline in
:meth:`Dtls13.get_timer`. :class:`~webrtc_secure.dtls.connection.DtlsConnection`
owns one once the version is known (or, as client, from its first hello on, since
that hello offers 1.3 and 1.2 alike) and hands over to its DTLS 1.2 path when the
server answers 1.2.

Flights (both sides present certificates, as WebRTC requires)::

    C: ClientHello                                   epoch 0
    S: HelloRetryRequest (missing share / cookie)    epoch 0, stateless
    C: ClientHello + cookie / share                  epoch 0
    S: ServerHello                                   epoch 0
       EncryptedExtensions CertificateRequest
       Certificate CertificateVerify Finished        epoch 2
    C: Certificate CertificateVerify Finished        epoch 2   client connected
    S: ACK                                           epoch 3   server connected
    application data, KeyUpdate + ACK                epoch 3, 4, ...

Reliability is RFC 9147's: every handshake record we send is remembered by its record
number; the peer's ACKs (content type 26) mark the message ranges they carried as
delivered and a retransmission resends only what is not. A flight that the peer's
next flight answers is acknowledged implicitly. We ACK a partial flight of the peer's
after a quarter of the retransmission timer, the client's final flight and every
KeyUpdate at once, and anything the peer repeats after that again. The timer starts
from the connection's RTT-derived value (connection.py) and doubles up to its cap.

The transcript hashes the TLS form of every message (4-octet header, RFC 9147 5.2);
the key schedule uses the "dtls13" label prefix (keys13.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import hmac
import logging
import os
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from webrtc_secure.certificate import Certificate, Fingerprint
from webrtc_secure.dtls import keys13
from webrtc_secure.dtls.codec import u16_list
from webrtc_secure.dtls.cookies13 import (
    RetryCookies,
    RetryState,
    client_hello1_hash,
    hello_retry_request,
    retry_transcript,
)
from webrtc_secure.dtls.events import ApplicationData, Event
from webrtc_secure.dtls.groups import ClientKeyShare, Group, server_key_share
from webrtc_secure.dtls.messages import (
    HANDSHAKE_HEADER_LENGTH,
    Alert,
    AlertDescription,
    AlertLevel,
    Extension,
    encode_handshake_header,
    encode_use_srtp,
    enum_name,
    parse_use_srtp,
    split_handshake_fragments,
)
from webrtc_secure.dtls.messages13 import (
    DTLS_1_2,
    DTLS_1_3,
    Certificate13,
    CertificateEntry,
    CertificateRequest13,
    CertificateVerify13,
    ClientHello13,
    EncryptedExtensions,
    ExtensionType13,
    Finished13,
    HandshakeType13,
    KeyShareEntry,
    KeyUpdate,
    ServerHello13,
    certificate_verify_content,
    encode_key_share_client,
    encode_key_share_server,
    encode_supported_versions_client,
    encode_supported_versions_server,
    parse_cookie,
    parse_key_share_client,
    parse_key_share_hrr,
    parse_key_share_server,
    parse_supported_versions_client,
    parse_supported_versions_server,
    parse_u16_list,
    transcript_message,
)
from webrtc_secure.dtls.reassembly import Message, Reassembler
from webrtc_secure.dtls.records13 import (
    PLAINTEXT_HEADER_LENGTH,
    CiphertextRecord,
    ContentType13,
    PlaintextRecord,
    ReceiveEpoch,
    RecordNumber,
    SendEpoch,
    encode_ack,
    encode_plaintext_record,
    make_mask_function,
    make_mask_writer,
    parse_ack,
    reconstruct_epoch,
    split_datagram,
)
from webrtc_secure.dtls.suites13 import SUITES13, TAG_LENGTH, Aead, CipherSuite13, Suite13Info
from webrtc_secure.errors import (
    AlertReceived,
    AuthenticationFailed,
    DtlsError,
    FingerprintMismatch,
    HandshakeFailure,
    HandshakeTimeout,
    MalformedPacket,
    ReplayDetected,
)
from webrtc_secure.srtp.profiles import Profile

logger = logging.getLogger(__name__)

_A = AlertDescription
_T = HandshakeType13
_HANDSHAKE = int(ContentType13.HANDSHAKE)
_ALERT = int(ContentType13.ALERT)
_ACK = int(ContentType13.ACK)
_APPLICATION_DATA = int(ContentType13.APPLICATION_DATA)
#: legacy_record_version of an initial ClientHello ({254, 255}, RFC 9147 5.3), as
#: browsers and OpenSSL send it; every other plaintext record says {254, 253}
_DTLS_1_0 = 0xFEFF
#: unified header (first octet, 16-bit sequence, length) + content type + AEAD tag
_CIPHERTEXT_OVERHEAD = 5 + 1 + TAG_LENGTH
#: an ACK names at most this many record numbers (the newest)
MAX_ACKED_RECORDS = 64
#: HelloRetryRequests a client accepts (RFC 8446 4.1.4: a second one is an error)
#: and application-data epochs kept readable behind the newest (reordering across a
#: KeyUpdate)
_OLD_EPOCHS_KEPT = 1
#: records of a future epoch kept while its keys do not exist yet
MAX_EARLY_RECORDS = 32
#: start a KeyUpdate when this many records are left before the AEAD limit
KEY_UPDATE_MARGIN = 1 << 16

# --- TLS 1.3 signature schemes (RFC 8446 4.2.3) --------------------------------------

ECDSA_SECP256R1_SHA256 = 0x0403
ECDSA_SECP384R1_SHA384 = 0x0503
RSA_PSS_RSAE_SHA256 = 0x0804
RSA_PSS_RSAE_SHA384 = 0x0805
RSA_PSS_RSAE_SHA512 = 0x0806
ED25519 = 0x0807
RSA_PKCS1_SHA256 = 0x0401  # DTLS 1.2 only: offered for a 1.2 server, never used in 1.3

#: what we sign with and accept under 1.3, in our order of preference
DEFAULT_SIGNATURE_SCHEMES13: tuple[int, ...] = (
    ECDSA_SECP256R1_SHA256,
    ECDSA_SECP384R1_SHA384,
    RSA_PSS_RSAE_SHA256,
    RSA_PSS_RSAE_SHA384,
    RSA_PSS_RSAE_SHA512,
    ED25519,
)
_PSS_HASH: dict[int, hashes.HashAlgorithm] = {
    RSA_PSS_RSAE_SHA256: hashes.SHA256(),
    RSA_PSS_RSAE_SHA384: hashes.SHA384(),
    RSA_PSS_RSAE_SHA512: hashes.SHA512(),
}
_ECDSA_CURVE = {ECDSA_SECP256R1_SHA256: "secp256r1", ECDSA_SECP384R1_SHA384: "secp384r1"}
_ECDSA_HASH: dict[int, hashes.HashAlgorithm] = {
    ECDSA_SECP256R1_SHA256: hashes.SHA256(),
    ECDSA_SECP384R1_SHA384: hashes.SHA384(),
}

PublicKey13 = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


def schemes_for_key(key: object) -> tuple[int, ...]:
    """The TLS 1.3 schemes a key (private or public) signs or verifies with: ECDSA
    is bound to its curve's hash in 1.3; RSA signs with PSS only."""
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return tuple(s for s, c in _ECDSA_CURVE.items() if c == key.curve.name)
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return (RSA_PSS_RSAE_SHA256, RSA_PSS_RSAE_SHA384, RSA_PSS_RSAE_SHA512)
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return (ED25519,)
    return ()


def sign13(key: Any, scheme: int, content: bytes) -> bytes:
    """A CertificateVerify signature with one of :func:`schemes_for_key`."""
    if scheme in _ECDSA_HASH:
        return cast(bytes, key.sign(content, ec.ECDSA(_ECDSA_HASH[scheme])))
    if scheme in _PSS_HASH:
        h = _PSS_HASH[scheme]
        pss = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
        return cast(bytes, key.sign(content, pss, h))
    if scheme == ED25519:
        return cast(bytes, key.sign(content))
    raise ValueError(f"cannot sign with scheme {scheme:#06x}")


def verify13(key: PublicKey13, scheme: int, signature: bytes, content: bytes) -> None:
    """Check a peer's CertificateVerify; illegal_parameter for a scheme that does not
    fit its key, decrypt_error for a bad signature (RFC 8446 4.4.3)."""
    if scheme not in schemes_for_key(key):
        raise HandshakeFailure(
            f"signature scheme {scheme:#06x} does not fit the peer's key", _A.ILLEGAL_PARAMETER
        )
    try:
        if scheme in _ECDSA_HASH:
            cast(ec.EllipticCurvePublicKey, key).verify(
                signature, content, ec.ECDSA(_ECDSA_HASH[scheme])
            )
        elif scheme in _PSS_HASH:
            h = _PSS_HASH[scheme]
            pss = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
            cast(rsa.RSAPublicKey, key).verify(signature, content, pss, h)
        else:
            cast(ed25519.Ed25519PublicKey, key).verify(signature, content)
    except InvalidSignature:
        raise HandshakeFailure("CertificateVerify does not verify", _A.DECRYPT_ERROR) from None


# --- configuration ---------------------------------------------------------------------


class Config13(NamedTuple):
    """What a DTLS 1.3 endpoint offers, accepts and requires."""

    certificate: Certificate
    cipher_suites: tuple[int, ...]
    #: key exchange groups in our order of preference (server: the hybrid first)
    groups: tuple[int, ...]
    #: the groups a client sends a key share for in its first hello
    key_share_groups: tuple[int, ...]
    signature_schemes: tuple[int, ...]
    srtp_profiles: tuple[int, ...]
    remote_fingerprints: tuple[Fingerprint, ...] | None
    verify_peer: Callable[[bytes], bool] | None
    require_client_certificate: bool = True
    random: Callable[[int], bytes] = os.urandom
    #: client: also offer DTLS 1.2 (versions, suites and the 1.2 extensions below)
    offer_1_2: bool = False
    legacy_cipher_suites: tuple[int, ...] = ()
    legacy_groups: tuple[int, ...] = ()
    legacy_signature_schemes: tuple[int, ...] = ()
    legacy_extensions: tuple[Extension, ...] = ()
    #: server: answer a hello without a valid cookie with a cookie HelloRetryRequest
    #: (the stateless return-routability check)
    require_cookie: bool = False


def _merged(*lists: tuple[int, ...]) -> tuple[int, ...]:
    out: list[int] = []
    for values in lists:
        for v in values:
            if v not in out:
                out.append(v)
    return tuple(out)


def client_hello_extensions(
    config: Config13, shares: list[KeyShareEntry], cookie: bytes = b""
) -> list[Extension]:
    """The ClientHello extensions: both versions' needs when 1.2 is offered too."""
    versions = [DTLS_1_3, DTLS_1_2] if config.offer_1_2 else [DTLS_1_3]
    groups = _merged(config.groups, config.legacy_groups if config.offer_1_2 else ())
    schemes = _merged(
        config.signature_schemes, config.legacy_signature_schemes if config.offer_1_2 else ()
    )
    extensions = [
        Extension(ExtensionType13.SUPPORTED_GROUPS, u16_list(groups)),
        Extension(ExtensionType13.SIGNATURE_ALGORITHMS, u16_list(schemes)),
    ]
    if config.srtp_profiles:
        extensions.append(
            Extension(ExtensionType13.USE_SRTP, encode_use_srtp(list(config.srtp_profiles)))
        )
    if config.offer_1_2:
        have = {e.type for e in extensions}
        extensions.extend(e for e in config.legacy_extensions if e.type not in have)
    extensions.append(
        Extension(ExtensionType13.SUPPORTED_VERSIONS, encode_supported_versions_client(versions))
    )
    extensions.append(Extension(ExtensionType13.KEY_SHARE, encode_key_share_client(shares)))
    if cookie:
        extensions.append(
            Extension(ExtensionType13.COOKIE, len(cookie).to_bytes(2, "big") + cookie)
        )
    return extensions


def offers_dtls13(extensions: dict[int, bytes]) -> bool:
    """Whether a ClientHello's supported_versions (raw extension map) offers DTLS 1.3;
    a malformed one is a decode error."""
    raw = extensions.get(ExtensionType13.SUPPORTED_VERSIONS)
    if raw is None:
        return False
    return DTLS_1_3 in parse_supported_versions_client(raw)


# --- the engine --------------------------------------------------------------------------


class Io13(Protocol):
    """What the engine needs from its connection."""

    def handshake_complete13(self) -> None: ...
    def key_log13(self, lines: list[str]) -> None: ...
    def flight_sent13(self) -> None: ...


class _Out:
    """One handshake message of ours in the current flight and what the peer ACKed."""

    __slots__ = ("acked", "body", "done", "epoch", "msg_type", "seq")

    def __init__(self, msg_type: int, seq: int, body: bytes, epoch: int) -> None:
        self.msg_type = msg_type
        self.seq = seq
        self.body = body
        self.epoch = epoch
        #: the body's [start, stop) ranges the peer acknowledged, merged and in order
        #: (a few tuples, not a byte per octet: a flight in flight at every handshake
        #: of a fleet brought up at once is part of its peak memory)
        self.acked: list[tuple[int, int]] = []
        self.done = False

    def missing(self) -> list[tuple[int, int]]:
        """The ranges of the body the peer has not acknowledged."""
        if self.done:
            return []
        if not self.body:
            return [(0, 0)]
        runs: list[tuple[int, int]] = []
        pos = 0
        for start, stop in self.acked:
            if start > pos:
                runs.append((pos, start))
            pos = max(pos, stop)
        if pos < len(self.body):
            runs.append((pos, len(self.body)))
        return runs

    def ack(self, start: int, stop: int) -> None:
        if stop > start:
            self.acked = _union([*self.acked, (start, stop)])
        acked = self.acked
        if not self.body or (acked and acked[0][0] <= 0 and acked[0][1] >= len(self.body)):
            self.done = True


# client states
_C_WAIT_SH = 0
_C_WAIT_EE = 1
_C_WAIT_CR_OR_CERT = 2
_C_WAIT_CERT = 3
_C_WAIT_CV = 4
_C_WAIT_FINISHED = 5
_CONNECTED = 6
_C_WAIT_ACK = 7
# server states
_S_WAIT_CH = 10
_S_WAIT_CERT = 11
_S_WAIT_CV = 12
_S_WAIT_FINISHED = 13
_STATE_NAMES = {
    _C_WAIT_SH: "WAIT_SERVER_HELLO",
    _C_WAIT_EE: "WAIT_ENCRYPTED_EXTENSIONS",
    _C_WAIT_CR_OR_CERT: "WAIT_CERT_REQUEST_OR_CERTIFICATE",
    _C_WAIT_CERT: "WAIT_CERTIFICATE",
    _C_WAIT_CV: "WAIT_CERTIFICATE_VERIFY",
    _C_WAIT_FINISHED: "WAIT_FINISHED",
    _CONNECTED: "CONNECTED",
    _C_WAIT_ACK: "WAIT_ACK_OF_FINISHED",
    _S_WAIT_CH: "WAIT_CLIENT_HELLO",
    _S_WAIT_CERT: "WAIT_CLIENT_CERTIFICATE",
    _S_WAIT_CV: "WAIT_CLIENT_CERTIFICATE_VERIFY",
    _S_WAIT_FINISHED: "WAIT_CLIENT_FINISHED",
}


class _AeadPerRecord:
    """Epoch 2's AEAD, keyed for each record instead of once (see
    :func:`handshake_sender`). Only ``encrypt`` and ``decrypt`` exist: all RecordAead
    calls."""

    __slots__ = ("_key", "_make")

    def __init__(self, make: Callable[[bytes], Aead], key: bytes) -> None:
        self._make = make
        self._key = key

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
        return self._make(self._key).encrypt(nonce, data, associated_data)

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
        return self._make(self._key).decrypt(nonce, data, associated_data)


@functools.cache
def _handshake_epoch_suite(suite: Suite13Info) -> Suite13Info:
    """``suite`` with an AEAD keyed per record (:class:`_AeadPerRecord`), for epoch 2."""
    make = cast(Callable[[bytes], Aead], functools.partial(_AeadPerRecord, suite.make_aead))
    return dataclasses.replace(suite, make_aead=make)


def _mask_per_record(sn_key: bytes, is_chacha: bool, sample: bytes) -> bytes:
    return make_mask_function(sn_key, is_chacha)(sample)


def _mask_into_per_record(sn_key: bytes, is_chacha: bool, sample: bytes, out: bytearray) -> None:
    make_mask_writer(sn_key, is_chacha)(sample, out)


def handshake_sender(suite: Suite13Info, keys: keys13.TrafficKeys) -> SendEpoch:
    """Epoch 2's sender, its AEAD and record-number cipher keyed for each record.

    The handshake epoch protects a handful of records, while a keyed AESGCM is about
    2.4 KB of OpenSSL state and an AES-ECB context 0.7 KB, per direction, held from
    the ServerHello to the end of the handshake: part of the peak of a fleet whose
    handshakes all run at once, and that peak is what stays resident. Keying costs a
    few microseconds a record; the records are the same octets."""
    sender = SendEpoch(_handshake_epoch_suite(suite), keys, 2)
    # records13 keeps the record-number mask function in this slot (keyed at init)
    sender._mask_of = functools.partial(_mask_per_record, keys.sn_key, suite.is_chacha)
    # and the writer form in its twin slot: left keyed, it would hold the epoch's
    # encryptor (epoch 2 never takes the connected paths that call it)
    sender._mask_into = functools.partial(_mask_into_per_record, keys.sn_key, suite.is_chacha)
    return sender


def handshake_receiver(suite: Suite13Info, keys: keys13.TrafficKeys, window: int) -> ReceiveEpoch:
    """Epoch 2's receiver, keyed for each record (see :func:`handshake_sender`)."""
    receiver = ReceiveEpoch(_handshake_epoch_suite(suite), keys, 2, window)
    receiver._mask_of = functools.partial(_mask_per_record, keys.sn_key, suite.is_chacha)
    receiver._mask_into = functools.partial(_mask_into_per_record, keys.sn_key, suite.is_chacha)
    return receiver


def _union(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching [start, stop) ranges merged, in order."""
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(ranges):
        if merged and start <= merged[-1][1]:
            if stop > merged[-1][1]:
                merged[-1] = (merged[-1][0], stop)
        else:
            merged.append((start, stop))
    return merged


def _fail(message: str, alert: AlertDescription) -> HandshakeFailure:
    return HandshakeFailure(message, alert)


class Fallback(Exception):
    """Raised inside the client engine when the server answered DTLS 1.2 (a 1.2
    ServerHello or a HelloVerifyRequest): the connection continues on its 1.2 path
    with this message, the reassembler and the records that followed it."""

    def __init__(self, message: Message) -> None:
        super().__init__("server answered DTLS 1.2")
        self.message = message
        self.remaining: list[PlaintextRecord] = []


class Dtls13:
    """One DTLS 1.3 association's handshake, record layer, ACKs and KeyUpdates."""

    # one per connection for its life: slots instead of a 64-key instance dict. The
    # __dict__ slot stays empty (no dict is made) unless something sets an attribute
    # that is not a slot: webrtc_secure.trace wraps a traced engine's methods that way
    __slots__ = (
        "__dict__",
        "_ack_at",
        "_ack_now",
        "_app_rx_secret",
        "_app_tx_secret",
        "_certificate_request_context",
        "_chosen_scheme",
        "_client_hello1",
        "_cookie",
        "_early",
        "_early_data",
        "_flight",
        "_flight_is_final",
        "_hash",
        "_key_update_pending",
        "_last_transmit",
        "_newest_hello",
        "_old_senders",
        "_parked_rx2",
        "_pending_transcript",
        "_plain_seq",
        "_requested_schemes",
        "_retransmissions",
        "_rtx_at",
        "_rx",
        "_rx_highest",
        "_rx_secret",
        "_send_counter",
        "_sent",
        "_shared_after_hello",
        "_shares",
        "_timeout",
        "_to_ack",
        "_tx",
        "_tx_secret",
        "client_random",
        "config",
        "events",
        "failed",
        "group",
        "hello_retry",
        "initial_timeout",
        "io",
        "is_client",
        "key_update_threshold",
        "key_updates_received",
        "key_updates_sent",
        "max_retransmissions",
        "max_timeout",
        "mtu",
        "now",
        "outbox",
        "peer_address",
        "peer_certificate",
        "peer_public_key",
        "reassembler",
        "replay_window",
        "retry_cookies",
        "schedule",
        "send_seq",
        "srtp_profile",
        "state",
        "stats",
        "suite",
    )

    def __init__(
        self,
        config: Config13,
        io: Io13,
        *,
        is_client: bool,
        events: deque[Event],
        stats: Any,
        mtu: int = 1200,
        initial_timeout: float = 0.4,
        max_timeout: float = 3.0,
        max_retransmissions: int = 12,
        replay_window: int = 64,
        reassembler: Reassembler | None = None,
        first_plaintext_sequence: int = 0,
        retry_cookies: RetryCookies | None = None,
        peer_address: object = None,
    ) -> None:
        self.config = config
        self.io = io
        self.is_client = is_client
        self.events = events
        self.stats = stats
        self.mtu = mtu
        self.initial_timeout = initial_timeout
        self.max_timeout = max_timeout
        self.max_retransmissions = max_retransmissions
        self.replay_window = replay_window
        self.reassembler = reassembler or Reassembler()
        self.retry_cookies = retry_cookies
        self.peer_address = peer_address
        self.outbox: list[bytes] = []
        self.now = 0.0
        self.state = _C_WAIT_SH if is_client else _S_WAIT_CH
        self.failed = False
        # negotiated
        self.suite: Suite13Info | None = None
        self.group: Group | None = None
        self.srtp_profile: Profile | None = None
        self.peer_certificate: bytes | None = None
        self.peer_public_key: PublicKey13 | None = None
        self.client_random = b""
        self.schedule: keys13.KeySchedule | None = None
        self.hello_retry = False
        # transcript: TLS-form messages before the hash is known, then a running hash
        self._pending_transcript: list[bytes] = []
        self._hash: Any = None
        # records
        self._plain_seq = first_plaintext_sequence
        self._tx: SendEpoch | None = None  # None: epoch 0, plaintext
        self._rx: dict[int, ReceiveEpoch] = {}
        self._rx_highest = 0
        self._tx_secret = b""
        self._rx_secret = b""
        self._app_tx_secret = b""
        self._app_rx_secret = b""
        self._shared_after_hello = b""
        #: senders of epochs we moved past whose flight may still need resending
        #: (the client's epoch-2 final flight once it writes epoch 3)
        self._old_senders: dict[int, SendEpoch] = {}
        #: server, connected: what the epoch-2 receiver leaves when its keyed ciphers
        #: go (_park_epoch2): its highest record number and failure count
        self._parked_rx2: tuple[int, int] | None = None
        # our flights and what the peer acknowledged
        self.send_seq = 0
        self._flight: list[_Out] = []
        #: record number -> (the message and the range of its body the record
        #: carried, the order it was sent in, when): the order and time infer losses
        #: from ACKs; the message is None once the record was acknowledged or declared
        #: lost. One dict, one tuple per record: a fleet's handshakes in flight at
        #: once (and their resends under load) all hold this at the same time
        self._sent: dict[tuple[int, int], tuple[_Out | None, int, int, int, float]] = {}
        self._send_counter = 0
        #: records of an epoch whose keys we do not have yet (reordering), bounded
        self._early: list[CiphertextRecord] = []
        #: server: the client's epoch-3 application data that arrived before its
        #: Finished was verified, held (bounded) until it is
        self._early_data: list[bytes] = []
        self._rtx_at: float | None = None
        self._timeout = initial_timeout
        self._retransmissions = 0
        self._last_transmit = -1e9
        self._flight_is_final = False  # the client's Certificate..Finished
        # the peer's handshake records to acknowledge, and when
        self._to_ack: list[RecordNumber] = []
        self._ack_at: float | None = None
        self._ack_now = False
        # KeyUpdate: ours in flight (switch epochs once acknowledged)
        self._key_update_pending = False
        self.key_update_threshold = 0
        # client
        self._shares: dict[int, ClientKeyShare] = {}
        self._cookie = b""
        self._client_hello1 = b""
        self._requested_schemes: list[int] | None = None
        self._certificate_request_context = b""
        # server
        self._chosen_scheme = 0
        self._newest_hello = 0
        self.key_updates_sent = 0
        self.key_updates_received = 0

    # --- public -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.state == _CONNECTED

    @property
    def state_name(self) -> str:
        return _STATE_NAMES[self.state]

    @property
    def write_epoch(self) -> int:
        return self._tx.epoch if self._tx is not None else 0

    @property
    def read_epoch(self) -> int:
        return self._rx_highest

    @property
    def plaintext_sequence(self) -> int:
        """The next epoch-0 record number we would send."""
        return self._plain_seq

    @property
    def retransmissions(self) -> int:
        """Timer-driven retransmissions of the current flight."""
        return self._retransmissions

    @property
    def timeout(self) -> float:
        """The current flight's retransmission timeout (doubled on every expiry)."""
        return self._timeout

    @property
    def retransmit_at(self) -> float | None:
        return self._rtx_at

    def client_hello_extension_types(self) -> list[int]:
        """The extension types of our ClientHello."""
        return [e.type for e in client_hello_extensions(self.config, [], self._cookie)]

    def get_timer(self) -> float | None:
        if self.failed:
            return None
        timers = [t for t in (self._rtx_at, self._ack_at) if t is not None]
        return min(timers) if timers else None

    def handle_timer(self, now: float) -> None:
        self.now = now
        if self.failed:
            return
        if self._ack_at is not None and now >= self._ack_at:
            self._send_ack()
        if self._rtx_at is not None and now >= self._rtx_at:
            if self._retransmissions >= self.max_retransmissions:
                if self.state == _CONNECTED:
                    # our final flight or a KeyUpdate: the peer may be gone, but a
                    # connection that works in both directions is not torn down for
                    # a lost ACK; a KeyUpdate that never completes keeps the old key
                    logger.warning(
                        "DTLS 1.3: flight unacknowledged after %d retransmissions",
                        self._retransmissions,
                    )
                    self._rtx_at = None
                    return
                if self.state == _C_WAIT_ACK:
                    # reported connected, but the server never confirmed our
                    # Finished: it cannot read what we send, so the connection ends
                    raise HandshakeTimeout(
                        f"Finished unacknowledged after {self._retransmissions} retransmissions"
                    )
                raise HandshakeTimeout(
                    f"flight unanswered after {self._retransmissions} retransmissions"
                )
            self._retransmissions += 1
            self._timeout = min(self._timeout * 2, self.max_timeout)
            self._rtx_at = now + self._timeout
            if not self._flight:
                # a client holding part of the server's flight: ask for the rest
                self._send_ack()
                return
            self.stats.retransmissions += 1
            self._transmit(now)
            if self._flight_is_final and self._flight:
                # As the DTLS 1.2 engine does with its Finished flight: nothing but our
                # retransmissions makes the server answer (its ACK) once it is
                # connected, and each round needs both directions, (1 - loss)^2; a
                # second copy of the (small) final flight lifts a round's odds
                self._transmit(now)

    def export_keying_material(self, label: str, length: int, context: bytes | None) -> bytes:
        """TLS 1.3 exporter (RFC 8446 7.5) under the exporter master secret."""
        assert self.schedule is not None and self.schedule.application is not None
        assert self.suite is not None
        return keys13.export_keying_material(
            self.suite.hash_name,
            self.schedule.application.exporter_master_secret,
            label.encode(),
            context,
            length,
        )

    def send_application_data(self, data: bytes) -> bytes:
        """One application data record for the caller to send (a KeyUpdate this
        starts, near the key's usage limit, goes to ``outbox``)."""
        tx = self._tx
        assert tx is not None and tx.epoch >= 3
        if (
            tx.next_sequence >= self.key_update_threshold
            and self.key_update_threshold
            and not self._key_update_pending
        ):
            self.key_update(request_peer=False)
        return tx.protect_application_data(data)

    def key_update(self, request_peer: bool = True) -> bool:
        """Send a KeyUpdate (RFC 9147 8); our sending epoch moves on once the peer has
        acknowledged it. False when one is still unacknowledged."""
        if self.state != _CONNECTED or self._key_update_pending:
            return False
        self._key_update_pending = True
        self.key_updates_sent += 1
        self._send_flight([(int(_T.KEY_UPDATE), KeyUpdate(request_peer).serialize())])
        return True

    def send_alert(self, level: int, description: int) -> None:
        payload = Alert(AlertLevel(level), AlertDescription(description)).serialize()
        # if the sequence space is exhausted the alert is skipped: the peer times out
        with contextlib.suppress(DtlsError):
            self.outbox.append(self._record(_ALERT, payload))

    # --- client -------------------------------------------------------------------------

    def start(self) -> None:
        """Client: send the first ClientHello."""
        self.client_random = self.config.random(32)
        for group in self.config.key_share_groups:
            self._shares[group] = ClientKeyShare(Group(group), self.config.random)
        self._send_client_hello()

    def client_hello_body(self) -> bytes:
        shares = [KeyShareEntry(g, s.key_exchange) for g, s in self._shares.items()]
        suites = _merged(
            self.config.cipher_suites,
            self.config.legacy_cipher_suites if self.config.offer_1_2 else (),
        )
        return ClientHello13(
            self.client_random,
            suites,
            tuple(client_hello_extensions(self.config, shares, self._cookie)),
        ).serialize()

    def _send_client_hello(self) -> None:
        body = self.client_hello_body()
        if not self._client_hello1:
            self._client_hello1 = body
        self.state = _C_WAIT_SH
        self._send_flight([(int(_T.CLIENT_HELLO), body)], add_to_transcript=False)

    def _on_server_hello(self, message: Message) -> None:
        body = message.body
        try:
            hello = ServerHello13.parse(body)
        except MalformedPacket:
            hello = None
        selected = None
        if hello is not None:
            raw = hello.extension(ExtensionType13.SUPPORTED_VERSIONS)
            if raw is not None:
                selected = parse_supported_versions_server(raw)
        if selected is None or selected == DTLS_1_2:
            if not self.config.offer_1_2:
                raise _fail("server answered DTLS 1.2, we offered 1.3 only", _A.PROTOCOL_VERSION)
            if self.hello_retry:
                raise _fail("DTLS 1.2 ServerHello after a HelloRetryRequest", _A.PROTOCOL_VERSION)
            raise Fallback(message)
        assert hello is not None
        if selected != DTLS_1_3:
            raise _fail(f"server selected version {selected:#06x}", _A.ILLEGAL_PARAMETER)
        if hello.legacy_version != DTLS_1_2 or hello.legacy_session_id_echo:
            raise _fail("ServerHello legacy fields are wrong for DTLS 1.3", _A.ILLEGAL_PARAMETER)
        if hello.cipher_suite not in self.config.cipher_suites:
            raise _fail("server chose a cipher suite we did not offer", _A.ILLEGAL_PARAMETER)
        suite = SUITES13[CipherSuite13(hello.cipher_suite)]
        allowed = {
            int(ExtensionType13.SUPPORTED_VERSIONS),
            int(ExtensionType13.KEY_SHARE),
            int(ExtensionType13.COOKIE),
        }
        for ext in hello.extensions:
            if ext.type not in allowed:
                raise _fail(
                    f"unsolicited ServerHello extension {ext.type}", _A.UNSUPPORTED_EXTENSION
                )
        if hello.is_hello_retry_request:
            self._on_hello_retry_request(hello, suite, body)
            return
        if self.suite is not None and self.suite.suite != suite.suite:
            raise _fail(
                "ServerHello suite differs from the HelloRetryRequest's", _A.ILLEGAL_PARAMETER
            )
        if hello.extension(ExtensionType13.COOKIE) is not None:
            raise _fail("cookie in a ServerHello", _A.UNSUPPORTED_EXTENSION)
        raw_share = hello.extension(ExtensionType13.KEY_SHARE)
        if raw_share is None:
            raise _fail("ServerHello without key_share", _A.MISSING_EXTENSION)
        entry = parse_key_share_server(raw_share)
        share = self._shares.get(entry.group)
        if share is None:
            raise _fail("server share for a group we sent no share for", _A.ILLEGAL_PARAMETER)
        shared = share.shared_secret(entry.key_exchange)
        # the private halves (an ML-KEM-768 key is about 9 KB outside the Python heap)
        # and ClientHello1 (only a HelloRetryRequest needs it) served their purpose: a
        # resent ClientHello is the framed copy in the flight
        self._shares = {}
        self._client_hello1 = b""
        self.group = Group(entry.group)
        if self.suite is None:
            self._set_hash(suite)
        self._absorb(_T.SERVER_HELLO, body)
        self._derive_handshake(shared)
        # The ServerHello is not authenticated: our hello stays on its timer until
        # the first message protected with the keys it gave arrives (a forged one
        # would otherwise leave us waiting for an EncryptedExtensions that no record
        # of the real server can ever decrypt to, with no timer running)
        self.state = _C_WAIT_EE

    def _on_hello_retry_request(
        self, hello: ServerHello13, suite: Suite13Info, body: bytes
    ) -> None:
        if self.hello_retry:
            raise _fail("a second HelloRetryRequest", _A.UNEXPECTED_MESSAGE)
        self.hello_retry = True
        raw_group = hello.extension(ExtensionType13.KEY_SHARE)
        raw_cookie = hello.extension(ExtensionType13.COOKIE)
        if raw_group is None and raw_cookie is None:
            raise _fail("HelloRetryRequest that changes nothing", _A.ILLEGAL_PARAMETER)
        if raw_group is not None:
            group = parse_key_share_hrr(raw_group)
            if group not in self.config.groups or group in self._shares:
                raise _fail(
                    "HelloRetryRequest for a group we do not support or already sent",
                    _A.ILLEGAL_PARAMETER,
                )
            self._shares = {group: ClientKeyShare(Group(group), self.config.random)}
        if raw_cookie is not None:
            self._cookie = parse_cookie(raw_cookie)
        self._set_hash(suite)
        # RFC 8446 4.4.1: ClientHello1 becomes message_hash(ClientHello1)
        self._pending_transcript = []
        self._hash = hashlib.new(suite.hash_name)
        self._hash.update(
            keys13.message_hash(suite.hash_name, transcript_message(1, self._client_hello1))
        )
        self._hash.update(transcript_message(_T.SERVER_HELLO, body))
        self._flight_acked_implicitly()
        body2 = self.client_hello_body()
        self.state = _C_WAIT_SH
        self._send_flight([(int(_T.CLIENT_HELLO), body2)])

    def _on_encrypted_extensions(self, message: Message) -> None:
        self._flight_acked_implicitly()
        # The server has our hello, but the rest of its flight may be lost: our timer
        # keeps running (same schedule) and, while that flight is incomplete, each
        # expiry repeats our ACK of what arrived, which makes the server resend the
        # rest at once (RFC 9147 7.1, 7.2). DTLS 1.2 gets the same from the client's
        # ClientHello retransmissions, which run until the server's flight is whole.
        self._rtx_at = self.now + self._timeout
        ee = EncryptedExtensions.parse(message.body)
        offered_srtp = bool(self.config.srtp_profiles)
        for ext in ee.extensions:
            if ext.type == ExtensionType13.USE_SRTP and offered_srtp:
                profiles, mki = parse_use_srtp(ext.data)
                if len(profiles) != 1 or profiles[0] not in self.config.srtp_profiles:
                    raise _fail(
                        "server chose an SRTP profile we did not offer", _A.ILLEGAL_PARAMETER
                    )
                if mki:
                    raise _fail("server returned an MKI we did not offer", _A.ILLEGAL_PARAMETER)
                self.srtp_profile = Profile(profiles[0])
            elif ext.type in (
                ExtensionType13.SUPPORTED_VERSIONS,
                ExtensionType13.KEY_SHARE,
                ExtensionType13.SIGNATURE_ALGORITHMS,
                ExtensionType13.COOKIE,
                ExtensionType13.USE_SRTP,
            ):
                raise _fail(
                    f"extension {ext.type} not allowed in EncryptedExtensions", _A.ILLEGAL_PARAMETER
                )
            elif ext.type not in (
                ExtensionType13.SUPPORTED_GROUPS,
                ExtensionType13.RECORD_SIZE_LIMIT,
            ):
                raise _fail(f"unsolicited extension {ext.type}", _A.UNSUPPORTED_EXTENSION)
        self._absorb(_T.ENCRYPTED_EXTENSIONS, message.body)
        self.state = _C_WAIT_CR_OR_CERT

    def _on_certificate_request(self, message: Message) -> None:
        request = CertificateRequest13.parse(message.body)
        raw = request.extension(ExtensionType13.SIGNATURE_ALGORITHMS)
        assert raw is not None
        self._requested_schemes = parse_u16_list(raw)
        self._certificate_request_context = request.certificate_request_context
        self._absorb(_T.CERTIFICATE_REQUEST, message.body)
        self.state = _C_WAIT_CERT

    def _client_final_flight(self) -> None:
        items: list[tuple[int, bytes]] = []
        if self._requested_schemes is not None:
            items.append(self._own_certificate(self._certificate_request_context))
            key = self.config.certificate.private_key
            scheme = next((s for s in schemes_for_key(key) if s in self._requested_schemes), None)
            if scheme is None:
                raise _fail("no common signature scheme for our certificate", _A.HANDSHAKE_FAILURE)
            items.append(self._own_certificate_verify(key, scheme, server=False))
        # the client Finished goes last: items are framed (and hashed) in order
        items.append((-1, b""))
        self._send_flight(items)

    # --- server -------------------------------------------------------------------------

    def on_client_hello(self, message: Message) -> None:
        """Server: a ClientHello that offers DTLS 1.3 (first or after our HRR)."""
        body = message.body
        hello = ClientHello13.parse(body)
        if hello.legacy_version != DTLS_1_2:
            raise _fail("ClientHello legacy_version is not DTLS 1.2", _A.PROTOCOL_VERSION)
        if hello.legacy_compression_methods != b"\x00":
            raise _fail("TLS 1.3 ClientHello with compression", _A.ILLEGAL_PARAMETER)
        if hello.legacy_cookie:
            raise _fail("DTLS 1.3 ClientHello with a legacy cookie", _A.ILLEGAL_PARAMETER)
        suite_id = next((s for s in self.config.cipher_suites if s in hello.cipher_suites), None)
        if suite_id is None:
            raise _fail("no DTLS 1.3 cipher suite in common", _A.HANDSHAKE_FAILURE)
        suite = SUITES13[CipherSuite13(suite_id)]
        raw_schemes = hello.extension(ExtensionType13.SIGNATURE_ALGORITHMS)
        if raw_schemes is None:
            raise _fail("ClientHello without signature_algorithms", _A.MISSING_EXTENSION)
        offered_schemes = parse_u16_list(raw_schemes)
        key = self.config.certificate.private_key
        scheme = next(
            (
                s
                for s in schemes_for_key(key)
                if s in offered_schemes and s in self.config.signature_schemes
            ),
            None,
        )
        if scheme is None:
            raise _fail("no signature scheme in common", _A.HANDSHAKE_FAILURE)
        raw_groups = hello.extension(ExtensionType13.SUPPORTED_GROUPS)
        raw_shares = hello.extension(ExtensionType13.KEY_SHARE)
        if raw_groups is None or raw_shares is None:
            raise _fail("ClientHello without supported_groups or key_share", _A.MISSING_EXTENSION)
        offered_groups = parse_u16_list(raw_groups)
        shares = {e.group: e.key_exchange for e in parse_key_share_client(raw_shares)}
        if any(g not in offered_groups for g in shares):
            raise _fail("key share for a group not in supported_groups", _A.ILLEGAL_PARAMETER)
        group = next((g for g in self.config.groups if g in shares), None)
        retry_group = 0
        if group is None:
            retry_group = next((g for g in self.config.groups if g in offered_groups), 0)
            if not retry_group:
                raise _fail("no key exchange group in common", _A.HANDSHAKE_FAILURE)
        raw_cookie = hello.extension(ExtensionType13.COOKIE)
        retry: RetryState | None = None
        cookies = self.retry_cookies
        if raw_cookie is not None and cookies is not None:
            cookie = parse_cookie(raw_cookie)
            retry = cookies.open(cookie, self.peer_address, self.now)
        if retry is None and (retry_group or (self.config.require_cookie and cookies is not None)):
            if cookies is None:
                cookies = self.retry_cookies = RetryCookies()
            self._send_hello_retry_request(message, suite, retry_group, cookies)
            return
        if retry is not None:
            if retry.cipher_suite != suite_id:
                raise _fail("ClientHello2 changes the cipher suite", _A.ILLEGAL_PARAMETER)
            if retry.group:
                if list(shares) != [retry.group]:
                    raise _fail(
                        "ClientHello2 without the requested key share", _A.ILLEGAL_PARAMETER
                    )
                group = retry.group
            self.hello_retry = True
        assert group is not None
        self.group = Group(group)
        raw_srtp = hello.extension(ExtensionType13.USE_SRTP)
        if raw_srtp is not None and self.config.srtp_profiles:
            offered_profiles, _mki = parse_use_srtp(raw_srtp)
            chosen = next((p for p in self.config.srtp_profiles if p in offered_profiles), None)
            self.srtp_profile = Profile(chosen) if chosen is not None else None
        self.client_random = hello.random
        self._chosen_scheme = scheme
        self._set_hash(suite)
        if retry is not None:
            assert raw_cookie is not None
            for entry in retry_transcript(retry, parse_cookie(raw_cookie)):
                self._hash.update(entry)
        self._absorb(_T.CLIENT_HELLO, body)
        # our messages continue the client's numbering (RFC 9147 5.2: after a
        # stateless HelloRetryRequest the ServerHello is message 1)
        self.send_seq = message.message_seq
        share, shared = server_key_share(self.group, shares[group], self.config.random)
        server_hello = ServerHello13(
            self.config.random(32),
            suite_id,
            (
                Extension(
                    ExtensionType13.SUPPORTED_VERSIONS, encode_supported_versions_server(DTLS_1_3)
                ),
                Extension(
                    ExtensionType13.KEY_SHARE, encode_key_share_server(KeyShareEntry(group, share))
                ),
            ),
        ).serialize()
        ee: list[Extension] = []
        if self.srtp_profile is not None:
            ee.append(
                Extension(ExtensionType13.USE_SRTP, encode_use_srtp([int(self.srtp_profile)]))
            )
        items: list[tuple[int, bytes]] = [(int(_T.SERVER_HELLO), server_hello)]
        self._shared_after_hello = shared
        items.append((-2, b""))  # derive the handshake keys here (after ServerHello)
        items.append((int(_T.ENCRYPTED_EXTENSIONS), EncryptedExtensions(tuple(ee)).serialize()))
        items.append(
            (
                int(_T.CERTIFICATE_REQUEST),
                CertificateRequest13(
                    (
                        Extension(
                            ExtensionType13.SIGNATURE_ALGORITHMS,
                            u16_list(self.config.signature_schemes),
                        ),
                    )
                ).serialize(),
            )
        )
        items.append(self._own_certificate(b""))
        items.append((-3, b""))  # CertificateVerify over the transcript so far
        items.append((-1, b""))  # Finished
        self._flight_acked_implicitly()
        self._send_flight(items)
        self.state = _S_WAIT_CERT

    def _send_hello_retry_request(
        self, message: Message, suite: Suite13Info, group: int, cookies: RetryCookies
    ) -> None:
        ch1 = transcript_message(_T.CLIENT_HELLO, message.body)
        state = RetryState(
            int(suite.suite), group, client_hello1_hash(suite.hash_name, ch1), self.now
        )
        cookie = cookies.make(state, self.peer_address)
        body = hello_retry_request(int(suite.suite), group, cookie)
        # stateless: the HRR is not kept as a flight; the client's retransmitted hello
        # gets a fresh one (RFC 9147 5.1)
        framed = encode_handshake_header(
            int(_T.SERVER_HELLO), len(body), message.message_seq, 0, len(body)
        )
        self.outbox.append(self._plain_record(_HANDSHAKE, framed + body))
        self.reassembler.reset(message.message_seq + 1)
        self.io.flight_sent13()

    # --- shared handshake pieces ----------------------------------------------------------

    def _set_hash(self, suite: Suite13Info) -> None:
        self.suite = suite
        self.schedule = keys13.KeySchedule(suite.hash_name)
        self._hash = hashlib.new(suite.hash_name)
        for entry in self._pending_transcript:
            self._hash.update(entry)
        self._pending_transcript = []
        self.key_update_threshold = max(suite.confidentiality_limit - KEY_UPDATE_MARGIN, 1)

    def _absorb(self, msg_type: int, body: bytes) -> None:
        if self.state == _CONNECTED:
            return  # post-handshake messages (KeyUpdate) are not in the transcript
        entry = transcript_message(msg_type, body)
        if self._hash is None:
            self._pending_transcript.append(entry)
        else:
            self._hash.update(entry)

    def _transcript_hash(self) -> bytes:
        return cast(bytes, self._hash.copy().digest())

    def _traffic(self, secret: bytes) -> keys13.TrafficKeys:
        assert self.suite is not None
        return keys13.traffic_keys(self.suite.hash_name, secret, self.suite.key_length)

    def _derive_handshake(self, shared: bytes) -> None:
        assert self.schedule is not None and self.suite is not None
        hs = self.schedule.derive_handshake(shared, self._transcript_hash())
        c, s = hs.client_handshake_traffic_secret, hs.server_handshake_traffic_secret
        mine, theirs = (c, s) if self.is_client else (s, c)
        self._tx = handshake_sender(self.suite, self._traffic(mine))
        self._rx[2] = handshake_receiver(self.suite, self._traffic(theirs), self.replay_window)
        self._rx_highest = 2

    def _derive_application(self) -> None:
        """After the server Finished: application secrets, the exporter, the key log."""
        assert self.schedule is not None and self.suite is not None
        app = self.schedule.derive_application(self._transcript_hash())
        self.io.key_log13(self.schedule.key_log_lines(self.client_random))
        c, s = app.client_application_traffic_secret, app.server_application_traffic_secret
        self._app_tx_secret, self._app_rx_secret = (c, s) if self.is_client else (s, c)
        self._rx[3] = ReceiveEpoch(
            self.suite, self._traffic(self._app_rx_secret), 3, self.replay_window
        )
        self._rx_secret = self._app_rx_secret
        self._rx_highest = 3

    def _finished_for(self, client: bool) -> bytes:
        assert self.schedule is not None and self.schedule.handshake is not None
        assert self.suite is not None
        hs = self.schedule.handshake
        base = hs.client_handshake_traffic_secret if client else hs.server_handshake_traffic_secret
        return keys13.finished_verify_data(self.suite.hash_name, base, self._transcript_hash())

    def _own_certificate(self, context: bytes) -> tuple[int, bytes]:
        body = Certificate13((CertificateEntry(self.config.certificate.der),), context).serialize()
        return int(_T.CERTIFICATE), body

    def _own_certificate_verify(self, key: Any, scheme: int, server: bool) -> tuple[int, bytes]:
        # placeholder: signed when framed (it signs the transcript up to our Certificate)
        return -4 if not server else -3, scheme.to_bytes(2, "big")

    def _accept_certificate(self, message: Message) -> None:
        certificate = Certificate13.parse(message.body)
        if self.is_client and certificate.certificate_request_context:
            raise _fail("server Certificate with a request context", _A.ILLEGAL_PARAMETER)
        if not self.is_client and certificate.certificate_request_context != b"":
            raise _fail("client Certificate with the wrong request context", _A.ILLEGAL_PARAMETER)
        self._absorb(_T.CERTIFICATE, message.body)
        if not certificate.entries:
            if self.is_client or self.config.require_client_certificate:
                raise _fail("peer sent no certificate", _A.CERTIFICATE_REQUIRED)
            return
        der = certificate.entries[0].cert_data
        try:
            public_key = x509.load_der_x509_certificate(der).public_key()
        except Exception as exc:
            # cryptography raises ValueError, UnsupportedAlgorithm, ... for hostile DER
            raise _fail(f"cannot parse peer certificate: {exc}", _A.BAD_CERTIFICATE) from None
        if not schemes_for_key(public_key):
            raise _fail("peer certificate key cannot sign TLS 1.3", _A.UNSUPPORTED_CERTIFICATE)
        # the fingerprint check exactly as DTLS 1.2 does it (handshake.accept_certificate)
        fingerprints = self.config.remote_fingerprints
        if fingerprints is not None and not any(fp.matches(der) for fp in fingerprints):
            raise FingerprintMismatch(
                "peer certificate does not match the remote fingerprint", _A.BAD_CERTIFICATE
            )
        if self.config.verify_peer is not None and not self.config.verify_peer(der):
            raise _fail("peer certificate refused by the verify callback", _A.BAD_CERTIFICATE)
        self.peer_certificate = der
        self.peer_public_key = cast(PublicKey13, public_key)

    def _check_certificate_verify(self, message: Message) -> None:
        verify = CertificateVerify13.parse(message.body)
        if verify.algorithm not in self.config.signature_schemes:
            raise _fail("CertificateVerify with a scheme we did not offer", _A.ILLEGAL_PARAMETER)
        assert self.peer_public_key is not None
        content = certificate_verify_content(self._transcript_hash(), server=self.is_client)
        verify13(self.peer_public_key, verify.algorithm, verify.signature, content)
        self._absorb(_T.CERTIFICATE_VERIFY, message.body)

    def _check_finished(self, message: Message) -> None:
        assert self.suite is not None
        finished = Finished13.parse(message.body, keys13.digest_size(self.suite.hash_name))
        if not hmac.compare_digest(finished.verify_data, self._finished_for(not self.is_client)):
            raise _fail("Finished verify_data does not match the transcript", _A.DECRYPT_ERROR)
        self._absorb(_T.FINISHED, message.body)

    # --- dispatch -----------------------------------------------------------------------

    def handle(self, message: Message) -> None:
        """One whole, in-order handshake message of the peer."""
        t = message.msg_type
        state = self.state
        epoch = message.epoch
        try:
            if t == _T.KEY_UPDATE:
                if state != _CONNECTED or epoch < 3:
                    raise _fail("KeyUpdate before the handshake completed", _A.UNEXPECTED_MESSAGE)
                self._on_key_update(KeyUpdate.parse(message.body))
                return
            # ClientHello, ServerHello/HelloRetryRequest, HelloVerifyRequest (1.2)
            hello = t in (1, 2, 3)
            if hello != (epoch == 0):
                raise _fail(f"{enum_name(_T, t)} in epoch {epoch}", _A.UNEXPECTED_MESSAGE)
            if self.is_client:
                self._client_handle(t, message)
            else:
                self._server_handle(t, message)
        except MalformedPacket as exc:
            raise _fail(f"cannot decode handshake message: {exc}", _A.DECODE_ERROR) from None

    def _unexpected(self, t: int) -> HandshakeFailure:
        return _fail(f"unexpected {enum_name(_T, t)} in {self.state_name}", _A.UNEXPECTED_MESSAGE)

    def _client_handle(self, t: int, message: Message) -> None:
        state = self.state
        if state == _C_WAIT_SH and t == _T.SERVER_HELLO:
            self._on_server_hello(message)
        elif state == _C_WAIT_SH and t == 3:  # HelloVerifyRequest: a DTLS 1.2 server
            if not self.config.offer_1_2 or self.hello_retry:
                raise _fail("HelloVerifyRequest in DTLS 1.3", _A.PROTOCOL_VERSION)
            raise Fallback(message)
        elif message.epoch != 2 and state != _C_WAIT_SH:
            raise _fail(f"{enum_name(_T, t)} in epoch {message.epoch}", _A.UNEXPECTED_MESSAGE)
        elif state == _C_WAIT_EE and t == _T.ENCRYPTED_EXTENSIONS:
            self._on_encrypted_extensions(message)
        elif state == _C_WAIT_CR_OR_CERT and t == _T.CERTIFICATE_REQUEST:
            self._on_certificate_request(message)
        elif state in (_C_WAIT_CR_OR_CERT, _C_WAIT_CERT) and t == _T.CERTIFICATE:
            self._accept_certificate(message)
            self.state = _C_WAIT_CV
        elif state == _C_WAIT_CV and t == _T.CERTIFICATE_VERIFY:
            self._check_certificate_verify(message)
            self.state = _C_WAIT_FINISHED
        elif state == _C_WAIT_FINISHED and t == _T.FINISHED:
            self._check_finished(message)
            self._derive_application()
            self._flight_acked_implicitly()
            self._flight_is_final = True
            self._client_final_flight()
            # Connected now, as RFC 8446 4.4.4 / RFC 9147 5.8.4 allow: the server's
            # Finished is verified and our application keys exist, so we report the
            # handshake complete and may send data, one round trip before the
            # server's ACK. Until that ACK (or anything the server protects in epoch
            # 3, which it does only once it accepted our Finished) we keep resending
            # the final flight; a server that refuses our certificate answers with a
            # fatal alert instead, which ends the connection with that typed error
            self.state = _C_WAIT_ACK
            self.io.handshake_complete13()
        else:
            raise self._unexpected(t)

    def _server_handle(self, t: int, message: Message) -> None:
        state = self.state
        if state == _S_WAIT_CH and t == _T.CLIENT_HELLO:
            self.on_client_hello(message)
            return
        if message.epoch != 2:
            raise _fail(f"{enum_name(_T, t)} in epoch {message.epoch}", _A.UNEXPECTED_MESSAGE)
        if state == _S_WAIT_CERT and t == _T.CERTIFICATE:
            self._flight_acked_implicitly()
            self._accept_certificate(message)
            self.state = _S_WAIT_CV if self.peer_certificate is not None else _S_WAIT_FINISHED
        elif state == _S_WAIT_CV and t == _T.CERTIFICATE_VERIFY:
            self._check_certificate_verify(message)
            self.state = _S_WAIT_FINISHED
        elif state == _S_WAIT_FINISHED and t == _T.FINISHED:
            self._flight_acked_implicitly()
            self._check_finished(message)
            assert self.suite is not None
            self._tx = SendEpoch(self.suite, self._traffic(self._app_tx_secret), 3)
            self._tx_secret = self._app_tx_secret
            self._finish_handshake()
            self._send_ack()  # the client's final flight has no other answer
            # acknowledged: a resend of it comes under new record numbers, which
            # _on_handshake_record lists again
            self._to_ack = []
        else:
            raise self._unexpected(t)

    def _finish_handshake(self) -> None:
        """Server: the client's Finished is verified. Client: the server acknowledged
        our Finished (we reported the handshake complete when we sent it)."""
        reported = self.state == _C_WAIT_ACK
        self.state = _CONNECTED
        self._release_handshake_state()
        if not reported:
            self.io.handshake_complete13()
        if self._early_data:
            # the client's data that overtook its Finished (or outlived a lost one),
            # delivered now that the Finished authenticated the client
            early, self._early_data = self._early_data, []
            self.events.extend(tuple.__new__(ApplicationData, (d,)) for d in early)

    def _release_handshake_state(self) -> None:
        """Drop what only the handshake needed, kept otherwise for the connection's life.

        Kept: the traffic secrets and the schedule (KeyUpdate), the server's epoch-2
        receiver (it still ACKs a resent client Finished), the peer's certificate
        (it is reported), and our unacknowledged flight with the senders it needs.
        """
        self._hash = None  # the transcript ends with the Finished messages
        self._pending_transcript = []
        self.peer_public_key = None  # CertificateVerify is verified
        self._requested_schemes = None
        self._shared_after_hello = b""
        self._client_hello1 = b""
        self._shares = {}
        self._certificate_request_context = b""
        self._early = []
        if self.is_client:
            # the server has our Finished (it ACKed it or wrote epoch 3): a late copy of
            # its epoch-2 flight is a counted drop, not a reason to answer. The server
            # keeps reading epoch 2: a resent client Finished (our ACK lost) must still
            # be ACKed
            self._rx.pop(2, None)
        else:
            self._park_epoch2()
        if not self._flight:
            # nothing of ours left to resend: no older epoch's sender, no loss inference
            self._old_senders = {}
            self._sent = {}

    def _park_epoch2(self) -> None:
        """Server, connected: keep epoch 2 readable without its keyed AEAD and record
        number cipher (about 3 KB of OpenSSL state for the connection's life). A
        record of epoch 2 is rare now (a client Finished resent because our ACK was
        lost, until the client hears our ACK or any epoch-3 record): the receiver is
        rebuilt for it from the same secret (the key schedule keeps it) by
        :meth:`_unpark_epoch2`."""
        receiver = self._rx.pop(2, None)
        if receiver is not None:
            self._parked_rx2 = (receiver.highest_sequence, receiver.failures)

    def _unpark_epoch2(self) -> ReceiveEpoch:
        """The epoch-2 receiver again, for a record of epoch 2 after :meth:`_park_epoch2`.

        It goes on from the parked receiver: its failure count (the integrity limit)
        and its highest record number, below which every number counts as seen (the
        lazy window of ReceiveEpoch marks them): stricter than the window it replaces,
        which a resent flight never needs (it comes under new, higher numbers)."""
        parked, schedule, suite = self._parked_rx2, self.schedule, self.suite
        assert parked is not None and suite is not None
        assert schedule is not None and schedule.handshake is not None
        self._parked_rx2 = None
        highest, failures = parked
        keys = self._traffic(schedule.handshake.client_handshake_traffic_secret)
        receiver = handshake_receiver(suite, keys, self.replay_window)
        # ReceiveEpoch's own state, set as the parked receiver left it (records13.py
        # keeps the window lazily up to _highest: see its class docstring)
        receiver._highest = highest
        receiver.failures = failures
        self._rx[2] = receiver
        return receiver

    # --- KeyUpdate ----------------------------------------------------------------------

    def _on_key_update(self, update: KeyUpdate) -> None:
        """The peer moved to its next epoch: derive it; ACK at once (the peer switches
        only once it has our ACK), and answer a request with our own update."""
        assert self.suite is not None
        self.key_updates_received += 1
        self._rx_secret = keys13.next_traffic_secret(self.suite.hash_name, self._rx_secret)
        epoch = self._rx_highest + 1
        self._rx[epoch] = ReceiveEpoch(
            self.suite, self._traffic(self._rx_secret), epoch, self.replay_window
        )
        self._rx_highest = epoch
        for old in [e for e in self._rx if e < epoch - _OLD_EPOCHS_KEPT]:
            del self._rx[old]
        if epoch - _OLD_EPOCHS_KEPT > 2:
            self._parked_rx2 = None  # epoch 2 goes as its receiver would have
        self._ack_now = True
        if update.update_requested and not self._key_update_pending:
            self.key_update(request_peer=False)

    def _switch_send_epoch(self) -> None:
        assert self.suite is not None and self._tx is not None
        self._tx_secret = keys13.next_traffic_secret(self.suite.hash_name, self._tx_secret)
        self._tx = SendEpoch(self.suite, self._traffic(self._tx_secret), self._tx.epoch + 1)
        self._key_update_pending = False

    # --- flights and ACKs -----------------------------------------------------------------

    def _send_flight(self, items: list[tuple[int, bytes]], add_to_transcript: bool = True) -> None:
        """Frame our messages (each in the epoch current when it is framed: the
        pseudo-types -1 Finished, -2 switch to epoch 2, -3/-4 CertificateVerify do
        their work in order) and send them as a new flight."""
        flight: list[_Out] = []
        key = self.config.certificate.private_key
        finished = False
        if self.state != _CONNECTED:
            # a handshake flight answers the peer's whole flight: nothing to ACK
            self._to_ack = []
            self._ack_at = None
        for msg_type, body in items:
            if msg_type == -2:
                self._derive_handshake(self._shared_after_hello)
                continue
            if msg_type in (-3, -4):
                server = msg_type == -3
                scheme = self._chosen_scheme if server else int.from_bytes(body, "big")
                content = certificate_verify_content(self._transcript_hash(), server=server)
                msg_type = int(_T.CERTIFICATE_VERIFY)
                body = CertificateVerify13(scheme, sign13(key, scheme, content)).serialize()
            elif msg_type == -1:
                msg_type = int(_T.FINISHED)
                body = self._finished_for(self.is_client)
                finished = True
            out = _Out(msg_type, self.send_seq, body, self.write_epoch)
            self.send_seq += 1
            if add_to_transcript:
                self._absorb(msg_type, body)
            else:
                self._pending_transcript.append(transcript_message(msg_type, body))
            flight.append(out)
            if msg_type == _T.FINISHED and not self.is_client:
                self._derive_application()
        self._flight = flight
        self._sent = {}
        self._timeout = self.initial_timeout
        self._retransmissions = 0
        self._rtx_at = self.now + self._timeout
        self.stats.flights_sent += 1
        self.io.flight_sent13()
        self._transmit(self.now)
        if self.is_client and finished:
            assert self.suite is not None
            self._remember_sender()
            self._tx = SendEpoch(self.suite, self._traffic(self._app_tx_secret), 3)
            self._tx_secret = self._app_tx_secret

    def _flight_acked_implicitly(self) -> None:
        """The peer's next flight acknowledges all of ours (RFC 9147 7.1)."""
        self._flight = []
        self._sent = {}
        self._rtx_at = None

    def _record(self, content_type: int, payload: bytes) -> bytes:
        if self._tx is None:
            return self._plain_record(content_type, payload)
        return self._tx.protect(content_type, payload)

    def _plain_record(self, content_type: int, payload: bytes) -> bytes:
        seq = self._plain_seq
        self._plain_seq = seq + 1
        version = (
            _DTLS_1_0
            if self.is_client and self.state == _C_WAIT_SH and not self.hello_retry
            else DTLS_1_2
        )
        return encode_plaintext_record(content_type, payload, seq, version)

    def _transmit(self, now: float, only: dict[_Out, list[tuple[int, int]]] | None = None) -> None:
        """Send what of the current flight the peer has not acknowledged (``only``:
        just these ranges of it), fragmented to the MTU, several records to a
        datagram, each record remembered by number and by the order it was sent."""
        self._last_transmit = now
        current = b""
        for out in self._flight:
            runs = out.missing()
            if only is not None:
                wanted = only.get(out)
                if not wanted:
                    continue
                runs = [
                    (max(s, a), min(e, b))
                    for s, e in runs
                    for a, b in wanted
                    if max(s, a) < min(e, b) or (s == e == a == b)
                ]
            epoch = out.epoch
            if epoch == 0:
                overhead = PLAINTEXT_HEADER_LENGTH + HANDSHAKE_HEADER_LENGTH
                sender = None
            else:
                sender = self._tx
                # a message framed in epoch 2 is resent in epoch 2 even after we moved on
                if sender is None or sender.epoch != epoch:
                    sender = self._epoch_sender(epoch)
                overhead = _CIPHERTEXT_OVERHEAD + HANDSHAKE_HEADER_LENGTH
            total = len(out.body)
            for start, stop in runs:
                offset = start
                while True:
                    room = self.mtu - len(current) - overhead
                    if room < min(stop - offset, 16) or room < 0:
                        if current:
                            self.outbox.append(current)
                            current = b""
                        room = self.mtu - overhead
                    size = min(stop - offset, room)
                    payload = (
                        encode_handshake_header(out.msg_type, total, out.seq, offset, size)
                        + out.body[offset : offset + size]
                    )
                    if sender is None:
                        number = (0, self._plain_seq)
                        current += self._plain_record(_HANDSHAKE, payload)
                    else:
                        number = (sender.epoch, sender.next_sequence)
                        current += sender.protect(_HANDSHAKE, payload)
                    self._sent[number] = (out, offset, offset + size, self._send_counter, now)
                    self._send_counter += 1
                    offset += size
                    if offset >= stop:
                        break
        if current:
            self.outbox.append(current)

    def _epoch_sender(self, epoch: int) -> SendEpoch:
        """The sender of an older epoch (epoch 2 for the client's final flight once it
        writes epoch 3): kept so that retransmissions keep their epoch."""
        sender = self._old_senders.get(epoch)
        if sender is None:
            raise DtlsError(f"no keys to resend epoch {epoch}")
        return sender

    def _remember_sender(self) -> None:
        if self._tx is not None:
            self._old_senders[self._tx.epoch] = self._tx

    def _on_ack(self, body: bytes) -> None:
        numbers = parse_ack(body)
        newest = -1
        sent = self._sent
        for number in numbers:
            key = (number.epoch, number.sequence_number)
            record = sent.get(key)
            if record is None:
                continue
            out, start, stop, order, at = record
            newest = max(newest, order)
            if out is not None:
                sent[key] = (None, 0, 0, order, at)
                if not out.done:
                    out.ack(start, stop)
        if not self._flight:
            return
        if all(out.done for out in self._flight):
            kinds = {out.msg_type for out in self._flight}
            self._flight = []
            self._sent = {}
            self._rtx_at = None
            if _T.KEY_UPDATE in kinds and self._key_update_pending:
                self._switch_send_epoch()
            if self.state == _C_WAIT_ACK:
                self._finish_handshake()
        else:
            # Lost (RFC 9147 7.1: the ACK lists what arrived, 7.2: resend the rest):
            # a record sent before one the peer acknowledged and not acknowledged
            # itself; and, once our last transmission is not racing this ACK, a
            # record sent a whole initial timeout ago (at least 1.5 round trips):
            # the peer had time to acknowledge it, and it repeats its ACK because it
            # still waits (handle_timer). Anything else may still be on its way and
            # waits for our timer.
            now = self.now
            horizon = now - self.initial_timeout
            settled = now - self._last_transmit >= self.initial_timeout / 4
            lost: dict[_Out, list[tuple[int, int]]] = {}
            for key, (out, start, stop, order, at) in list(sent.items()):
                if out is not None and (order < newest or (settled and at <= horizon)):
                    # declared lost once; its resend gets new numbers
                    sent[key] = (None, 0, 0, order, at)
                    if not out.done:
                        lost.setdefault(out, []).append((start, stop))
            if lost:
                # one range may have been lost in several rounds: resend it once
                for lost_out, lost_ranges in lost.items():
                    lost[lost_out] = _union(lost_ranges)
                self.stats.retransmissions += 1
                self._transmit(now, lost)
                self._rtx_at = now + self._timeout

    def _send_ack(self) -> None:
        self._ack_at = None
        if not self._to_ack:
            return
        numbers = self._to_ack[-MAX_ACKED_RECORDS:]
        body = encode_ack(sorted(set(numbers)))
        try:
            self.outbox.append(self._record(_ACK, body))
        except DtlsError:
            return

    # --- receiving ----------------------------------------------------------------------

    def receive_datagram(self, data: bytes, now: float) -> None:
        """Process one datagram; raises DtlsError (the connection fails with its
        alert) or Fallback (client: the server speaks DTLS 1.2)."""
        self.now = now
        if self.state == _CONNECTED:
            # The connected fast path: the next in-order application data record of
            # the newest epoch, alone in its datagram with a 16-bit sequence number
            # and a length (what every application data datagram of ours and of
            # browsers looks like). The receiver checks all that, and the general path
            # below takes whatever it declines.
            receiver = self._rx.get(self._rx_highest)
            if receiver is not None:
                try:
                    content = receiver.read_application_data(data)
                except AuthenticationFailed:
                    self.stats.records_received += 1
                    self.stats.dropped_authentication += 1
                    self._check_integrity_limit(receiver)
                    return
                if content is not None:
                    self.stats.records_received += 1
                    self.events.append(tuple.__new__(ApplicationData, (content,)))
                    return
        records, clean = split_datagram(data)
        if not clean:
            self.stats.dropped_malformed += 1
        self._ack_now = False
        highest = self._rx_highest
        self._process(records, now)
        while self._early and self._rx_highest > highest and not self.failed:
            highest = self._rx_highest
            early, self._early = self._early, []
            self._process(list(early), now)

    def _process(self, records: list[Any], now: float) -> None:
        stats = self.stats
        handshake_seen = False
        old_seen = False
        for index, record in enumerate(records):
            stats.records_received += 1
            if type(record) is PlaintextRecord:
                ctype = record.content_type
                if record.epoch != 0 or ctype == _APPLICATION_DATA:
                    stats.dropped_epoch += 1
                    continue
                if self.state == _CONNECTED and ctype != _HANDSHAKE:
                    stats.dropped_epoch += 1  # unauthenticated alerts/ACKs afterwards
                    continue
                if self.state == _CONNECTED:
                    stats.dropped_unexpected_handshake += 1
                    continue
                epoch, seq, content = 0, record.sequence_number, record.fragment
            else:
                record = cast(CiphertextRecord, record)
                epoch_or_none = reconstruct_epoch(record.epoch_bits, self._rx_highest)
                receiver = self._rx.get(epoch_or_none) if epoch_or_none is not None else None
                if receiver is None and epoch_or_none == 2 and self._parked_rx2 is not None:
                    receiver = self._unpark_epoch2()
                if receiver is None:
                    if (
                        (epoch_or_none is None or epoch_or_none > 0)
                        and self.state != _CONNECTED
                        and len(self._early) < MAX_EARLY_RECORDS
                    ):
                        # the next epoch's records overtook the ServerHello: kept
                        # until its keys exist (as the DTLS 1.2 engine does)
                        self._early.append(record)
                    else:
                        stats.dropped_epoch += 1
                    continue
                try:
                    opened = receiver.open_record(record)
                except AuthenticationFailed:
                    stats.dropped_authentication += 1
                    self._check_integrity_limit(receiver)
                    continue
                except ReplayDetected:
                    stats.dropped_replay += 1
                    continue
                except MalformedPacket:
                    stats.dropped_malformed += 1
                    continue
                ctype, content, epoch, seq = opened
                if epoch >= 3 and self.state == _C_WAIT_ACK:
                    # the server protects epoch 3 only once it accepted our Finished
                    self._flight_acked_implicitly()
                    self._finish_handshake()
            if ctype == _HANDSHAKE:
                handshake_seen = True
                try:
                    new, old = self._on_handshake_record(content, epoch, seq, records, index)
                except Fallback as fallback:
                    fallback.remaining = [
                        r for r in records[index + 1 :] if type(r) is PlaintextRecord
                    ]
                    raise
                old_seen = old_seen or old
                del new
            elif ctype == _ACK:
                try:
                    self._on_ack(content)
                except MalformedPacket:
                    stats.dropped_malformed += 1
            elif ctype == _ALERT:
                self._on_alert(content, epoch)
                if self.failed:
                    return
            elif ctype == _APPLICATION_DATA:
                if epoch >= 3 and self.state == _CONNECTED:
                    self.events.append(tuple.__new__(ApplicationData, (content,)))
                elif (
                    epoch >= 3
                    and not self.is_client
                    and self.state != _S_WAIT_CH
                    and len(self._early_data) < MAX_EARLY_RECORDS
                ):
                    # a client is connected once it sent its Finished (RFC 9147
                    # 5.8.4) and its data may overtake that flight, or outlive its
                    # loss: held until the Finished authenticates the client, so that
                    # its first SCTP packets and media wait one flight, not one SCTP
                    # or application timeout
                    self._early_data.append(content)
                else:
                    stats.dropped_epoch += 1
        if (
            old_seen
            and self._flight_is_final
            and self._flight
            and now - self._last_transmit >= self.initial_timeout / 4
        ):
            # the server repeats its flight: our final flight was lost
            self.stats.retransmissions += 1
            self._transmit(now)
        if self._ack_now:
            self._send_ack()
        elif old_seen and self.state == _CONNECTED:
            # the peer resent a flight we already acknowledged: our ACK was lost, and
            # the peer's timer alone drives these rounds; two copies of the tiny ACK
            self._send_ack()
            self._send_ack()
        elif old_seen and self._flight and now - self._last_transmit >= self.initial_timeout / 4:
            # the peer repeats a flight we answered: our answer was lost
            self.stats.retransmissions += 1
            self._transmit(now)
        elif handshake_seen and self._to_ack and self.state != _CONNECTED:
            if self.reassembler.has_gap and self.state != _S_WAIT_CH:
                # a later message is here and an earlier one is not: tell the peer now
                # what arrived, so that it resends only the gap (RFC 9147 7.1)
                self._send_ack()
            elif self._ack_at is None:
                self._ack_at = now + self.initial_timeout / 4

    def _on_handshake_record(
        self, payload: bytes, epoch: int, seq: int, records: list[Any], index: int
    ) -> tuple[bool, bool]:
        try:
            fragments = split_handshake_fragments(payload)
        except MalformedPacket:
            self.stats.dropped_malformed += 1
            return False, False
        reassembler = self.reassembler
        new = old = False
        # recorded first: a handler that answers with a flight clears the list. A
        # server keeps nothing of a hello it has not accepted (a stateless HRR may
        # follow), so it acknowledges none: the client must keep resending it
        # During the handshake a record holding only messages we already processed
        # is the peer repeating a flight we answered: our answer covers it, an ACK
        # would be one more datagram for nothing. Once connected such a record is
        # the peer's final flight or KeyUpdate again, and its ACK was lost.
        state = self.state
        if state != _S_WAIT_CH and (
            state == _CONNECTED or any(f[2] >= reassembler.next_seq for f in fragments)
        ):
            self._to_ack.append(RecordNumber(epoch, seq))
        for msg_type, length, message_seq, offset, body in fragments:
            hello_wait = self.state == _S_WAIT_CH and msg_type == _T.CLIENT_HELLO
            if hello_wait and message_seq > self._newest_hello:
                self._newest_hello = message_seq
            if (
                hello_wait
                and message_seq != reassembler.next_seq
                and message_seq >= self._newest_hello
            ):
                # until a hello is accepted the server keeps no sequence state: a
                # retransmitted first hello gets a fresh HelloRetryRequest, and the
                # newest hello seen wins (a client never goes back to an older one,
                # so a late fragment of ClientHello1 must not displace ClientHello2)
                self._newest_hello = message_seq
                reassembler.reset(message_seq)
            if message_seq < reassembler.next_seq:
                old = True
                continue
            if not reassembler.accept(msg_type, length, message_seq, offset, body, epoch):
                self.stats.dropped_fragments += 1
                continue
            new = True
            while (message := reassembler.pop_ready()) is not None:
                self.handle(message)
                if self.failed:
                    return new, old
        return new, old

    def _check_integrity_limit(self, receiver: ReceiveEpoch) -> None:
        """RFC 9147 4.5.3: once this many forged records failed under one key, an
        attacker may be close to a forgery; the connection ends (a KeyUpdate would
        only move the peer's sending key, and it is the peer who must act)."""
        if receiver.integrity_exhausted:
            raise DtlsError(
                f"{receiver.failures} records failed authentication in epoch "
                f"{receiver.epoch}: the AEAD integrity limit is reached"
            )

    def _on_alert(self, payload: bytes, epoch: int) -> None:
        try:
            alert = Alert.parse(payload)
        except MalformedPacket:
            self.stats.dropped_malformed += 1
            return
        if alert.description == AlertDescription.CLOSE_NOTIFY:
            raise PeerClosed()
        if alert.description == AlertDescription.USER_CANCELED:
            # RFC 8446 6.1: a closure alert, not an error: the peer cancels for a
            # reason of its own and its close_notify should follow, which ends the
            # connection cleanly (and a handshake it abandoned times out)
            logger.info("DTLS 1.3: peer sent user_canceled (epoch %d)", epoch)
            return
        # RFC 8446 6: every other alert is an error alert whatever its level says, an
        # unknown one included (6.2 alerts are fatal; unknown types MUST be errors)
        name = enum_name(AlertDescription, alert.description)
        raise AlertReceived(f"peer sent fatal alert {name}", alert.description)


class PeerClosed(Exception):
    """close_notify arrived (the connection ends cleanly)."""
