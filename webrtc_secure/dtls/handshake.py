"""DTLS 1.2 client and server handshake state machines (RFC 6347 4.2, RFC 5246 7).

They consume whole, in-order handshake messages (reassembly is done below them) and
act through a small :class:`HandshakeIO` face of the connection: send a flight,
install record keys, finish. Every failure raises HandshakeFailure carrying the
alert to send.

Flights (both sides present certificates, as WebRTC requires):
  1 C: ClientHello                2 S: HelloVerifyRequest (optional, stateless)
  3 C: ClientHello + cookie       4 S: ServerHello Certificate ServerKeyExchange
                                       CertificateRequest ServerHelloDone
  5 C: Certificate ClientKeyExchange CertificateVerify [CCS] Finished
  6 S: [CCS] Finished

Work done once, not per message: every message is framed once (that frame is both
the transcript entry and, when it fits, the record payload); the transcript is
hashed incrementally once the suite's hash is known, and the session hash and both
Finished take copies of that running hash; the master secret keys one PRF for the key
block, both Finished and the exporter; what an endpoint offers (the ClientHello after
its cookie, the CertificateRequest, its Certificate message) is encoded once per
configuration and reused by every connection.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from cryptography import x509

from webrtc_secure.certificate import Certificate, Fingerprint
from webrtc_secure.dtls import keys
from webrtc_secure.dtls.codec import u16_list
from webrtc_secure.dtls.cookies import CookieFactory
from webrtc_secure.dtls.crypto import (
    Digest,
    KeyShare,
    PublicKey,
    choose_scheme,
    key_kind,
    scheme_hash,
    sign,
    usable_schemes,
    verify,
)
from webrtc_secure.dtls.flights import FlightItem
from webrtc_secure.dtls.messages import (
    CLIENT_CERT_ECDSA_SIGN,
    CLIENT_CERT_RSA_SIGN,
    EMPTY_RENEGOTIATION_INFO_SCSV,
    FRAGMENT_HEADER,
    AlertDescription,
    ClientHelloFields,
    Extension,
    ExtensionType,
    HandshakeType,
    ServerHelloFields,
    client_hello_tail,
    encode_certificate_list,
    encode_certificate_request,
    encode_client_hello,
    encode_ecdh_params,
    encode_hello_verify_request,
    encode_server_hello,
    encode_signature,
    encode_use_srtp,
    enum_name,
    parse_certificate_list,
    parse_certificate_request,
    parse_certificate_verify,
    parse_client_hello,
    parse_client_key_exchange,
    parse_ec_point_formats,
    parse_finished,
    parse_hello_verify_request,
    parse_renegotiation_info,
    parse_server_hello,
    parse_server_hello_done,
    parse_server_key_exchange,
    parse_u16_list_extension,
    parse_use_srtp,
    serialize_extensions,
)
from webrtc_secure.dtls.messages13 import check_downgrade, with_downgrade_sentinel
from webrtc_secure.dtls.reassembly import Message
from webrtc_secure.dtls.records import ContentType, ProtocolVersion, RecordProtection
from webrtc_secure.dtls.suites import (
    SUITES,
    CipherSuite,
    NamedGroup,
    SignatureScheme,
    SuiteInfo,
)
from webrtc_secure.errors import FingerprintMismatch, HandshakeFailure, MalformedPacket
from webrtc_secure.srtp.profiles import Profile

logger = logging.getLogger(__name__)

MAX_HELLO_VERIFY_REQUESTS = 4
_A = AlertDescription
_HANDSHAKE = int(ContentType.HANDSHAKE)
_CCS_ITEM = FlightItem(int(ContentType.CHANGE_CIPHER_SPEC), 0, body=b"\x01")
_SUITES_BY_ID: dict[int, SuiteInfo] = {int(k): v for k, v in SUITES.items()}
_GROUPS_BY_ID: dict[int, NamedGroup] = {int(g): g for g in NamedGroup}
_DTLS_1_2 = int(ProtocolVersion.DTLS_1_2)
#: the unfragmented 12-octet handshake header (framed_message, written out in the two
#: places every message passes; handshake messages here are far below 2^24 octets)
_FRAME = FRAGMENT_HEADER.pack
# Plain ints for the hot paths: looking up an enum member and hashing or comparing it
# costs several times what an int does.
_EXT_EMS = int(ExtensionType.EXTENDED_MASTER_SECRET)
_EXT_RENEGOTIATION_INFO = int(ExtensionType.RENEGOTIATION_INFO)
_EXT_SUPPORTED_GROUPS = int(ExtensionType.SUPPORTED_GROUPS)
_EXT_EC_POINT_FORMATS = int(ExtensionType.EC_POINT_FORMATS)
_EXT_SIGNATURE_ALGORITHMS = int(ExtensionType.SIGNATURE_ALGORITHMS)
_EXT_USE_SRTP = int(ExtensionType.USE_SRTP)
_DEFAULT_GROUPS = [int(NamedGroup.SECP256R1)]
# RFC 5246 7.4.1.4.1: absent signature_algorithms means sha1, which we do not do;
# assume SHA-256
_DEFAULT_SCHEMES = [
    int(SignatureScheme.ECDSA_SECP256R1_SHA256),
    int(SignatureScheme.RSA_PKCS1_SHA256),
]
_PROFILES_BY_ID: dict[int, Profile] = {int(p): p for p in Profile}


class Offer(NamedTuple):
    """What an endpoint offers, normalized, with the constant bytes it sends."""

    cipher_suites: tuple[CipherSuite, ...]
    groups: tuple[NamedGroup, ...]
    signature_schemes: tuple[SignatureScheme, ...]
    srtp_profiles: tuple[Profile, ...]
    #: the ClientHello after its cookie (suites, compression, extensions)
    client_hello_tail: bytes
    #: extension types our ClientHello carries (a ServerHello may answer only these)
    client_extensions: frozenset[int]
    #: the CertificateRequest body a server sends
    certificate_request: bytes
    #: the suites above as ints, for an RSA certificate and for an ECDSA one
    rsa_suite_ids: tuple[int, ...]
    ecdsa_suite_ids: tuple[int, ...]
    group_ids: tuple[int, ...]
    scheme_ids: tuple[int, ...]
    profile_ids: tuple[int, ...]


@functools.lru_cache(maxsize=64)
def make_offer(
    cipher_suites: tuple[int, ...],
    groups: tuple[int, ...],
    signature_schemes: tuple[int, ...],
    srtp_profiles: tuple[int, ...],
) -> Offer:
    """Normalize a configuration and encode what it sends; cached, because every
    connection of an application usually shares one configuration."""
    suites = tuple(CipherSuite(s) for s in cipher_suites)
    group_list = tuple(NamedGroup(g) for g in groups)
    schemes = tuple(SignatureScheme(s) for s in signature_schemes)
    profiles = tuple(Profile(p) for p in srtp_profiles)
    extensions = [
        Extension(ExtensionType.EXTENDED_MASTER_SECRET, b""),
        Extension(ExtensionType.RENEGOTIATION_INFO, b"\x00"),
        Extension(ExtensionType.SUPPORTED_GROUPS, u16_list(group_list)),
        Extension(ExtensionType.EC_POINT_FORMATS, b"\x01\x00"),
        Extension(ExtensionType.SIGNATURE_ALGORITHMS, u16_list(schemes)),
    ]
    if profiles:
        extensions.append(Extension(ExtensionType.USE_SRTP, encode_use_srtp(list(profiles))))
    return Offer(
        suites,
        group_list,
        schemes,
        profiles,
        # our own key type does not restrict the suites: it only signs CertificateVerify
        client_hello_tail([int(s) for s in suites], b"\x00", extensions),
        frozenset(int(e.type) for e in extensions),
        encode_certificate_request(
            bytes([CLIENT_CERT_ECDSA_SIGN, CLIENT_CERT_RSA_SIGN]), schemes, b""
        ),
        tuple(int(s) for s in suites if SUITES[s].uses_rsa),
        tuple(int(s) for s in suites if not SUITES[s].uses_rsa),
        tuple(int(g) for g in group_list),
        tuple(int(s) for s in schemes),
        tuple(int(p) for p in profiles),
    )


@functools.lru_cache(maxsize=64)
def _certificate_body(der: bytes) -> bytes:
    """Our Certificate message (the same for every handshake of one certificate)."""
    return encode_certificate_list([der])


@functools.lru_cache(maxsize=64)
def _server_extensions(
    secure_renegotiation: bool, ems: bool, point_formats: bool, profile: int | None
) -> bytes:
    """The ServerHello extensions block for one negotiated combination."""
    extensions: list[Extension] = []
    if secure_renegotiation:
        extensions.append(Extension(ExtensionType.RENEGOTIATION_INFO, b"\x00"))
    if ems:
        extensions.append(Extension(ExtensionType.EXTENDED_MASTER_SECRET, b""))
    if point_formats:
        extensions.append(Extension(ExtensionType.EC_POINT_FORMATS, b"\x01\x00"))
    if profile is not None:
        extensions.append(Extension(ExtensionType.USE_SRTP, encode_use_srtp([profile])))
    return serialize_extensions(extensions)


class HandshakeConfig(NamedTuple):
    """What an endpoint offers and requires; shared by client and server."""

    certificate: Certificate
    offer: Offer
    require_extended_master_secret: bool
    require_client_certificate: bool
    remote_fingerprints: tuple[Fingerprint, ...] | None
    verify_peer: Callable[[bytes], bool] | None
    random: Callable[[int], bytes]

    @property
    def cipher_suites(self) -> tuple[CipherSuite, ...]:
        return self.offer.cipher_suites

    @property
    def groups(self) -> tuple[NamedGroup, ...]:
        return self.offer.groups

    @property
    def signature_schemes(self) -> tuple[SignatureScheme, ...]:
        return self.offer.signature_schemes

    @property
    def srtp_profiles(self) -> tuple[Profile, ...]:
        return self.offer.srtp_profiles


class HandshakeIO(Protocol):
    """What the handshake needs from the connection."""

    def send_flight(self, items: list[FlightItem], *, expect_reply: bool) -> None: ...
    def send_stateless(self, items: list[FlightItem]) -> None: ...
    def install_keys(self, read: RecordProtection, write: RecordProtection) -> None: ...
    def handshake_complete(self) -> None: ...
    def log_master_secret(self, client_random: bytes, master: bytes) -> None: ...
    def start_dtls13(self, message: Message) -> bool: ...


def _fail(message: str, alert: AlertDescription) -> HandshakeFailure:
    return HandshakeFailure(message, alert)


class Handshake:
    """State shared by both roles: transcript, randoms, negotiated parameters, keys."""

    # one per connection for its life (the 1.3 path keeps it too): slots, not an
    # instance dict; the __dict__ slot stays empty unless a test sets a stand-in
    __slots__ = (
        "__dict__",
        "_master_prf",
        "_peer_schemes",
        "_transcript_hash",
        "client_random",
        "config",
        "done",
        "dtls13_capable",
        "extended_master_secret",
        "group",
        "io",
        "master_secret",
        "peer_certificate",
        "peer_public_key",
        "send_seq",
        "server_random",
        "srtp_profile",
        "state",
        "suite",
        "transcript",
    )

    is_client: bool

    def __init__(self, config: HandshakeConfig, io: HandshakeIO) -> None:
        self.config = config
        self.io = io
        #: every handshake message so far, framed (what CertificateVerify signs)
        self.transcript = bytearray()
        #: running hash of ``transcript`` under the suite's PRF hash, once it is known
        self._transcript_hash: Any = None
        self.send_seq = 0
        self.client_random = b""
        self.server_random = b""
        self.suite: SuiteInfo | None = None
        self.group: NamedGroup | None = None
        self.srtp_profile: Profile | None = None
        self.extended_master_secret = False
        self.master_secret = b""
        self._master_prf: keys.Prf | None = None
        self.peer_certificate: bytes | None = None
        self.peer_public_key: PublicKey | None = None
        self._peer_schemes: tuple[SignatureScheme, ...] = ()
        self.done = False
        #: client: our hello offered DTLS 1.3 too (RFC 8446 4.1.3 downgrade check);
        #: server: we speak DTLS 1.3 (our 1.2 ServerHello.random carries the sentinel)
        self.dtls13_capable = False

    # --- helpers shared by both roles ---------------------------------------------------

    def own_body(self, msg_type: int, body: bytes, epoch: int = 0) -> FlightItem:
        """Frame one of our messages, add it to the transcript, return its flight item."""
        seq = self.send_seq
        self.send_seq = seq + 1
        length = len(body)
        framed = _FRAME(msg_type << 24 | length, seq, length >> 16, length & 0xFFFF) + body
        self.transcript += framed
        if self._transcript_hash is not None:
            self._transcript_hash.update(framed)
        # tuple.__new__ builds the NamedTuple without its generated Python __new__
        return tuple.__new__(FlightItem, (_HANDSHAKE, epoch, msg_type, seq, body, framed))

    def own(self, message: Any, epoch: int = 0) -> FlightItem:
        """:meth:`own_body` for a message object (anything with msg_type and serialize)."""
        return self.own_body(int(message.msg_type), message.serialize(), epoch)

    def absorb(self, message: Message) -> None:
        """Add one of the peer's messages to the transcript."""
        framed = message.framed
        if framed is None:
            msg_type, seq, body, _epoch, _ = message
            length = len(body)
            framed = _FRAME(msg_type << 24 | length, seq, length >> 16, length & 0xFFFF) + body
        self.transcript += framed
        if self._transcript_hash is not None:
            self._transcript_hash.update(framed)

    def _set_suite(self, suite: SuiteInfo) -> None:
        """The suite is known: from here on the transcript is also hashed as it grows."""
        self.suite = suite
        self._transcript_hash = keys.hash_constructor(suite.hash_name)(self.transcript)

    def transcript_hash(self) -> bytes:
        """Hash of the transcript so far (a copy of the running hash, finalized)."""
        return self._transcript_hash.copy().digest()  # type: ignore[no-any-return]

    def signed_transcript(self, scheme: int) -> bytes | Digest:
        """What CertificateVerify signs: the transcript, as the running hash's digest
        when the scheme hashes with the suite's PRF hash (no second pass over it)."""
        if self._transcript_hash is not None and scheme_hash(scheme) == self.hash_name():
            return Digest(self.transcript_hash())
        return bytes(self.transcript)

    def hash_name(self) -> str:
        assert self.suite is not None
        return self.suite.hash_name

    def accept_certificate(self, certificates: list[bytes]) -> None:
        """Load the peer's end-entity certificate and check it against the fingerprints."""
        if not certificates:
            raise _fail("peer sent no certificate", _A.HANDSHAKE_FAILURE)
        der = certificates[0]
        try:
            cert = x509.load_der_x509_certificate(der)
            public_key = cert.public_key()
        except Exception as exc:
            # cryptography raises ValueError, UnsupportedAlgorithm, InvalidVersion...
            # for hostile DER: every one of them is a bad certificate, never a crash
            raise _fail(f"cannot parse peer certificate: {exc}", _A.BAD_CERTIFICATE) from None
        if key_kind(public_key) is None:
            raise _fail("peer certificate key is neither ECDSA nor RSA", _A.UNSUPPORTED_CERTIFICATE)
        peer_key: PublicKey = public_key  # type: ignore[assignment]
        fingerprints = self.config.remote_fingerprints
        if fingerprints is not None and not any(fp.matches(der) for fp in fingerprints):
            raise FingerprintMismatch(
                "peer certificate does not match the remote fingerprint", _A.BAD_CERTIFICATE
            )
        if self.config.verify_peer is not None and not self.config.verify_peer(der):
            raise _fail("peer certificate refused by the verify callback", _A.BAD_CERTIFICATE)
        self.peer_certificate = der
        self.peer_public_key = peer_key
        self._peer_schemes = usable_schemes(peer_key)

    def derive_keys(self, pre_master: bytes) -> None:
        """Master secret (extended when negotiated) and the epoch-1 record keys."""
        suite = self.suite
        assert suite is not None
        if self.extended_master_secret:
            self.master_secret = keys.extended_master_secret(
                suite.hash_name, pre_master, self.transcript_hash()
            )
        else:
            self.master_secret = keys.master_secret(
                suite.hash_name, pre_master, self.client_random, self.server_random
            )
        self.io.log_master_secret(self.client_random, self.master_secret)
        self._master_prf = keys.Prf(suite.hash_name, self.master_secret)
        block = keys.key_block_from(
            self._master_prf,
            self.client_random,
            self.server_random,
            suite.key_length,
            suite.fixed_iv_length,
        )
        client = RecordProtection(suite, block.client_write_key, block.client_write_iv)
        server = RecordProtection(suite, block.server_write_key, block.server_write_iv)
        if self.is_client:
            self.io.install_keys(read=server, write=client)
        else:
            self.io.install_keys(read=client, write=server)

    def export_keying_material(self, label: str, length: int, context: bytes | None) -> bytes:
        """RFC 5705 exporter under this handshake's master secret."""
        prf = self._master_prf
        if prf is None:
            # released with the rest of the handshake state: keyed again from the secret
            assert self.suite is not None and self.master_secret
            prf = keys.Prf(self.suite.hash_name, self.master_secret)
        return keys.export_from(prf, self.client_random, self.server_random, label, length, context)

    def release_handshake_state(self) -> None:
        """Once done: drop what only the handshake needed and the connection would
        keep for its life (the framed transcript with both certificates, its running
        hash, our ECDHE private key, the peer's parsed public key, the keyed PRF).
        Kept: the master secret and randoms (the exporter), the peer's certificate
        (reported); our last flight is the connection's, framed, for retransmission."""
        self.transcript = bytearray()
        self._transcript_hash = None
        self._master_prf = None
        self.peer_public_key = None

    def finished_for(self, client_side: bool) -> bytes:
        assert self._master_prf is not None
        return keys.verify_data_from_hash(self._master_prf, client_side, self.transcript_hash())

    def check_finished(self, message: Message) -> None:
        if message.epoch == 0:
            raise _fail("Finished arrived unprotected", _A.UNEXPECTED_MESSAGE)
        verify_data = parse_finished(message.body)
        expected = self.finished_for(not self.is_client)
        if not hmac.compare_digest(verify_data, expected):
            raise _fail("Finished verify_data does not match the transcript", _A.DECRYPT_ERROR)

    def handle(self, message: Message) -> None:
        raise NotImplementedError


# States are plain ints: the dispatch compares them on every message.
_C_START = 0
_C_WAIT_SERVER_HELLO = 1
_C_WAIT_CERTIFICATE = 2
_C_WAIT_KEY_EXCHANGE = 3
_C_WAIT_CERT_REQUEST_OR_DONE = 4
_C_WAIT_HELLO_DONE = 5
_C_WAIT_FINISHED = 6
_C_DONE = 7
#: the state a client is in once its hello is out (the DTLS 1.3 engine sent it and
#: hands over to this machine when the server answers DTLS 1.2)
CLIENT_WAIT_SERVER_HELLO = _C_WAIT_SERVER_HELLO
_CLIENT_STATE_NAMES = (
    "START",
    "WAIT_SERVER_HELLO",
    "WAIT_CERTIFICATE",
    "WAIT_KEY_EXCHANGE",
    "WAIT_CERT_REQUEST_OR_DONE",
    "WAIT_HELLO_DONE",
    "WAIT_FINISHED",
    "DONE",
)

_CLIENT_HELLO = int(HandshakeType.CLIENT_HELLO)
_SERVER_HELLO = int(HandshakeType.SERVER_HELLO)
_HELLO_VERIFY_REQUEST = int(HandshakeType.HELLO_VERIFY_REQUEST)
_CERTIFICATE = int(HandshakeType.CERTIFICATE)
_SERVER_KEY_EXCHANGE = int(HandshakeType.SERVER_KEY_EXCHANGE)
_CERTIFICATE_REQUEST = int(HandshakeType.CERTIFICATE_REQUEST)
_SERVER_HELLO_DONE = int(HandshakeType.SERVER_HELLO_DONE)
_CERTIFICATE_VERIFY = int(HandshakeType.CERTIFICATE_VERIFY)
_CLIENT_KEY_EXCHANGE = int(HandshakeType.CLIENT_KEY_EXCHANGE)
_FINISHED = int(HandshakeType.FINISHED)


class ClientHandshake(Handshake):
    __slots__ = ("cookie", "hello_verify_count", "requested_schemes", "server_public")
    is_client = True

    def __init__(self, config: HandshakeConfig, io: HandshakeIO) -> None:
        super().__init__(config, io)
        self.state = _C_START
        self.cookie = b""
        self.hello_verify_count = 0
        #: signature schemes of the server's CertificateRequest (None: not requested)
        self.requested_schemes: list[int] | None = None
        #: the server's ECDHE public key
        self.server_public: bytes = b""

    @property
    def state_name(self) -> str:
        return _CLIENT_STATE_NAMES[self.state]

    def start(self) -> None:
        self.client_random = self.config.random(32)
        self._send_hello()

    def _send_hello(self) -> None:
        body = encode_client_hello(
            _DTLS_1_2, self.client_random, b"", self.cookie, self.config.offer.client_hello_tail
        )
        # the transcript starts with the hello the server finally answers
        self.transcript = bytearray()
        item = self.own_body(_CLIENT_HELLO, body)
        self.state = _C_WAIT_SERVER_HELLO
        self.io.send_flight([item], expect_reply=True)

    def handle(self, message: Message) -> None:
        t = message.msg_type
        state = self.state
        if message.epoch != 0 and t != _FINISHED:
            raise _fail("handshake message other than Finished in epoch 1", _A.UNEXPECTED_MESSAGE)
        # every parse error in a message is decode_error (the handlers parse with the
        # plain functions of messages.py, which raise MalformedPacket)
        try:
            if state == _C_WAIT_SERVER_HELLO and t == _SERVER_HELLO:
                self._on_server_hello(message)
            elif state == _C_WAIT_CERTIFICATE and t == _CERTIFICATE:
                self.absorb(message)
                self.accept_certificate(parse_certificate_list(message.body))
                assert self.suite is not None and self.peer_public_key is not None
                if self.suite.uses_rsa != (key_kind(self.peer_public_key) == "rsa"):
                    raise _fail(
                        "server certificate key does not fit the suite", _A.UNSUPPORTED_CERTIFICATE
                    )
                self.state = _C_WAIT_KEY_EXCHANGE
            elif state == _C_WAIT_KEY_EXCHANGE and t == _SERVER_KEY_EXCHANGE:
                self._on_server_key_exchange(message)
            elif state == _C_WAIT_CERT_REQUEST_OR_DONE and t == _CERTIFICATE_REQUEST:
                self.absorb(message)
                _types, schemes, _authorities = parse_certificate_request(message.body)
                self.requested_schemes = schemes
                self.state = _C_WAIT_HELLO_DONE
            elif t == _SERVER_HELLO_DONE and state in (
                _C_WAIT_CERT_REQUEST_OR_DONE,
                _C_WAIT_HELLO_DONE,
            ):
                self.absorb(message)
                parse_server_hello_done(message.body)
                self._send_client_flight()
            elif state == _C_WAIT_FINISHED and t == _FINISHED:
                self.check_finished(message)
                self.absorb(message)
                self.state = _C_DONE
                self.done = True
                self.io.handshake_complete()
                self.release_handshake_state()
            elif state == _C_WAIT_SERVER_HELLO and t == _HELLO_VERIFY_REQUEST:
                self._on_hello_verify_request(message)
            else:
                raise _fail(
                    f"unexpected {enum_name(HandshakeType, t)} in {self.state_name}",
                    _A.UNEXPECTED_MESSAGE,
                )
        except MalformedPacket as exc:
            raise _fail(f"cannot decode handshake message: {exc}", _A.DECODE_ERROR) from None

    def _on_hello_verify_request(self, message: Message) -> None:
        _version, cookie = parse_hello_verify_request(message.body)
        if not cookie:
            raise _fail("HelloVerifyRequest with an empty cookie", _A.ILLEGAL_PARAMETER)
        self.hello_verify_count += 1
        if self.hello_verify_count > MAX_HELLO_VERIFY_REQUESTS:
            raise _fail("too many HelloVerifyRequests", _A.HANDSHAKE_FAILURE)
        self.cookie = cookie
        self._send_hello()

    def _on_server_hello(self, message: Message) -> None:
        self.absorb(message)
        hello: ServerHelloFields = parse_server_hello(message.body)
        if hello.server_version != _DTLS_1_2:
            raise _fail(f"server chose version {hello.server_version:#06x}", _A.PROTOCOL_VERSION)
        suite = _SUITES_BY_ID.get(hello.cipher_suite)
        offer = self.config.offer
        if suite is None or (
            hello.cipher_suite not in offer.rsa_suite_ids
            and hello.cipher_suite not in offer.ecdsa_suite_ids
        ):
            raise _fail("server chose a cipher suite we did not offer", _A.ILLEGAL_PARAMETER)
        if hello.compression_method != 0:
            raise _fail("server chose compression", _A.ILLEGAL_PARAMETER)
        offered = self.config.offer.client_extensions
        for ext_type in hello.extensions:
            if ext_type not in offered:
                raise _fail(f"unsolicited extension {ext_type}", _A.UNSUPPORTED_EXTENSION)
        # a 1.3-capable server that answers 1.2 to our 1.3 offer says so in its random:
        # someone removed 1.3 from our hello (illegal_parameter)
        check_downgrade(hello.random, hello.server_version, self.dtls13_capable)
        self.server_random = hello.random
        self._set_suite(suite)
        try:
            self._check_server_extensions(hello.extensions)
        except MalformedPacket as exc:
            raise _fail(f"malformed ServerHello extension: {exc}", _A.DECODE_ERROR) from None
        self.state = _C_WAIT_CERTIFICATE

    def _check_server_extensions(self, found: dict[int, bytes]) -> None:
        ems = found.get(_EXT_EMS)
        if ems is not None and ems:
            raise MalformedPacket("extended_master_secret must be empty")
        self.extended_master_secret = ems is not None
        if not self.extended_master_secret and self.config.require_extended_master_secret:
            raise _fail("server did not negotiate extended master secret", _A.HANDSHAKE_FAILURE)
        reneg = found.get(_EXT_RENEGOTIATION_INFO)
        if reneg is not None and parse_renegotiation_info(reneg):
            raise _fail(
                "non-empty renegotiation_info in an initial handshake", _A.HANDSHAKE_FAILURE
            )
        formats = found.get(_EXT_EC_POINT_FORMATS)
        if formats is not None and 0 not in parse_ec_point_formats(formats):
            raise _fail("server cannot take uncompressed points", _A.ILLEGAL_PARAMETER)
        srtp = found.get(_EXT_USE_SRTP)
        if srtp is not None:
            profiles, mki = parse_use_srtp(srtp)
            if len(profiles) != 1 or profiles[0] not in self.config.offer.profile_ids:
                raise _fail("server chose an SRTP profile we did not offer", _A.ILLEGAL_PARAMETER)
            if mki:
                raise _fail("server returned an MKI we did not offer", _A.ILLEGAL_PARAMETER)
            self.srtp_profile = _PROFILES_BY_ID[profiles[0]]

    def _on_server_key_exchange(self, message: Message) -> None:
        self.absorb(message)
        body = message.body
        group, public, scheme, signature = parse_server_key_exchange(body)
        if group not in self.config.offer.group_ids:
            raise _fail("server chose a group we did not offer", _A.ILLEGAL_PARAMETER)
        if scheme not in self.config.offer.scheme_ids:
            raise _fail("server signed with a scheme we did not offer", _A.ILLEGAL_PARAMETER)
        assert self.peer_public_key is not None
        # the signature covers the ServerECDHParams exactly as they came (RFC 8422 5.4):
        # curve type, group and the length-prefixed point, the first 4 + n octets
        verify(
            self.peer_public_key,
            scheme,
            signature,
            self.client_random + self.server_random + body[: 4 + len(public)],
            self._peer_schemes,
        )
        self.group = _GROUPS_BY_ID[group]
        self.server_public = public
        self.state = _C_WAIT_CERT_REQUEST_OR_DONE

    def _send_client_flight(self) -> None:
        assert self.group is not None
        share = KeyShare(self.group, self.config.random)
        pre_master = share.exchange(self.server_public)
        items: list[FlightItem] = []
        requested = self.requested_schemes
        certificate = self.config.certificate
        if requested is not None:
            items.append(self.own_body(_CERTIFICATE, _certificate_body(certificate.der)))
        public = share.public_bytes
        items.append(self.own_body(_CLIENT_KEY_EXCHANGE, len(public).to_bytes(1, "big") + public))
        self.derive_keys(pre_master)
        if requested is not None:
            key = certificate.private_key
            scheme = choose_scheme(key, requested)
            if scheme is None:
                raise _fail(
                    "no common signature scheme for CertificateVerify", _A.HANDSHAKE_FAILURE
                )
            signature = sign(key, scheme, self.signed_transcript(scheme))
            items.append(self.own_body(_CERTIFICATE_VERIFY, encode_signature(scheme, signature)))
        items.append(_CCS_ITEM)
        items.append(self.own_body(_FINISHED, self.finished_for(True), epoch=1))
        self.state = _C_WAIT_FINISHED
        self.io.send_flight(items, expect_reply=True)


_S_WAIT_CLIENT_HELLO = 0
_S_WAIT_CERTIFICATE = 1
_S_WAIT_KEY_EXCHANGE = 2
_S_WAIT_CERTIFICATE_VERIFY = 3
_S_WAIT_FINISHED = 4
_S_DONE = 5
_SERVER_STATE_NAMES = (
    "WAIT_CLIENT_HELLO",
    "WAIT_CERTIFICATE",
    "WAIT_KEY_EXCHANGE",
    "WAIT_CERTIFICATE_VERIFY",
    "WAIT_FINISHED",
    "DONE",
)


class ServerHandshake(Handshake):
    __slots__ = ("cookies", "peer_address", "share")
    is_client = False

    def __init__(
        self,
        config: HandshakeConfig,
        io: HandshakeIO,
        cookies: CookieFactory | None,
        peer_address: object = None,
    ) -> None:
        super().__init__(config, io)
        self.state = _S_WAIT_CLIENT_HELLO
        self.cookies = cookies
        self.peer_address = peer_address
        self.share: KeyShare | None = None

    @property
    def state_name(self) -> str:
        return _SERVER_STATE_NAMES[self.state]

    @property
    def waiting_for_hello(self) -> bool:
        return self.state == _S_WAIT_CLIENT_HELLO

    def handle(self, message: Message) -> None:
        t = message.msg_type
        state = self.state
        if message.epoch != 0 and t != _FINISHED:
            raise _fail("handshake message other than Finished in epoch 1", _A.UNEXPECTED_MESSAGE)
        # every parse error in a message is decode_error (the handlers parse with the
        # plain functions of messages.py, which raise MalformedPacket)
        try:
            if state == _S_WAIT_CLIENT_HELLO and t == _CLIENT_HELLO:
                self._on_client_hello(message)
            elif state == _S_WAIT_CERTIFICATE and t == _CERTIFICATE:
                self.absorb(message)
                certificates = parse_certificate_list(message.body)
                if not certificates:
                    if self.config.require_client_certificate:
                        raise _fail("client sent no certificate", _A.HANDSHAKE_FAILURE)
                else:
                    self.accept_certificate(certificates)
                self.state = _S_WAIT_KEY_EXCHANGE
            elif state == _S_WAIT_KEY_EXCHANGE and t == _CLIENT_KEY_EXCHANGE:
                self.absorb(message)
                public = parse_client_key_exchange(message.body)
                assert self.share is not None
                self.derive_keys(self.share.exchange(public))
                self.state = (
                    _S_WAIT_CERTIFICATE_VERIFY
                    if self.peer_public_key is not None
                    else _S_WAIT_FINISHED
                )
            elif state == _S_WAIT_CERTIFICATE_VERIFY and t == _CERTIFICATE_VERIFY:
                scheme, signature = parse_certificate_verify(message.body)
                assert self.peer_public_key is not None
                if scheme not in self.config.offer.scheme_ids:
                    raise _fail(
                        "CertificateVerify with a scheme we did not request", _A.ILLEGAL_PARAMETER
                    )
                verify(
                    self.peer_public_key,
                    scheme,
                    signature,
                    self.signed_transcript(scheme),
                    self._peer_schemes,
                )
                self.absorb(message)
                self.state = _S_WAIT_FINISHED
            elif state == _S_WAIT_FINISHED and t == _FINISHED:
                self.check_finished(message)
                self.absorb(message)
                items = [_CCS_ITEM, self.own_body(_FINISHED, self.finished_for(False), epoch=1)]
                self.state = _S_DONE
                self.done = True
                self.io.send_flight(items, expect_reply=False)
                self.io.handshake_complete()
                self.release_handshake_state()
                self.share = None
            else:
                raise _fail(
                    f"unexpected {enum_name(HandshakeType, t)} in {self.state_name}",
                    _A.UNEXPECTED_MESSAGE,
                )
        except MalformedPacket as exc:
            raise _fail(f"cannot decode handshake message: {exc}", _A.DECODE_ERROR) from None

    def _on_client_hello(self, message: Message) -> None:
        hello: ClientHelloFields = parse_client_hello(message.body)
        if hello.client_version >> 8 != 0xFE or hello.client_version > _DTLS_1_2:
            raise _fail(
                f"client offers version {hello.client_version:#06x}, not DTLS 1.2",
                _A.PROTOCOL_VERSION,
            )
        # DTLS 1.3 when both sides speak it: the connection hands the hello to its 1.3
        # engine (which runs its own return-routability check, a cookie HelloRetryRequest)
        if self.io.start_dtls13(message):
            return
        if self.cookies is not None and not self.cookies.check(hello, self.peer_address):
            # stateless: answer and forget; the client's retransmission timer drives retries
            body = encode_hello_verify_request(
                ProtocolVersion.DTLS_1_0, self.cookies.make(hello, self.peer_address)
            )
            self.io.send_stateless(
                [FlightItem(_HANDSHAKE, 0, _HELLO_VERIFY_REQUEST, message.message_seq, body)]
            )
            return
        if 0 not in hello.compression_methods:
            raise _fail("client does not offer null compression", _A.ILLEGAL_PARAMETER)
        try:
            choice = self._negotiate(hello)
        except MalformedPacket as exc:
            raise _fail(f"malformed ClientHello extension: {exc}", _A.DECODE_ERROR) from None
        self.send_seq = message.message_seq
        self._set_suite(_SUITES_BY_ID[choice.suite])
        self.absorb(message)
        self.client_random = hello.random
        self.server_random = self.config.random(32)
        if self.dtls13_capable:
            self.server_random = with_downgrade_sentinel(self.server_random, _DTLS_1_2)
        self.group = choice.group
        self.srtp_profile = choice.srtp_profile
        self.extended_master_secret = choice.extended_master_secret
        self._send_server_flight(choice)

    def _negotiate(self, hello: ClientHelloFields) -> _Choice:
        ext = hello.extensions
        offer = self.config.offer
        offered_suites = hello.cipher_suites
        suite = 0
        for candidate in (
            offer.rsa_suite_ids if self.config.certificate.is_rsa else (offer.ecdsa_suite_ids)
        ):
            if candidate in offered_suites:
                suite = candidate
                break
        if not suite:
            raise _fail("no cipher suite in common", _A.HANDSHAKE_FAILURE)
        groups_raw = ext.get(_EXT_SUPPORTED_GROUPS)
        offered_groups = (
            parse_u16_list_extension(groups_raw) if groups_raw is not None else _DEFAULT_GROUPS
        )
        group = 0
        for candidate in offer.group_ids:
            if candidate in offered_groups:
                group = candidate
                break
        if not group:
            raise _fail("no ECDHE group in common", _A.HANDSHAKE_FAILURE)
        formats = ext.get(_EXT_EC_POINT_FORMATS)
        if formats is not None and 0 not in parse_ec_point_formats(formats):
            raise _fail("client cannot take uncompressed points", _A.ILLEGAL_PARAMETER)
        schemes_raw = ext.get(_EXT_SIGNATURE_ALGORITHMS)
        offered_schemes = (
            parse_u16_list_extension(schemes_raw) if schemes_raw is not None else _DEFAULT_SCHEMES
        )
        scheme = choose_scheme(self.config.certificate.private_key, offered_schemes)
        if scheme is None or scheme not in offer.scheme_ids:
            raise _fail("no signature scheme in common", _A.HANDSHAKE_FAILURE)
        ems_raw = ext.get(_EXT_EMS)
        if ems_raw:
            raise MalformedPacket("extended_master_secret must be empty")
        ems = ems_raw is not None
        if not ems and self.config.require_extended_master_secret:
            raise _fail("client does not offer extended master secret", _A.HANDSHAKE_FAILURE)
        reneg_raw = ext.get(_EXT_RENEGOTIATION_INFO)
        if reneg_raw is not None and parse_renegotiation_info(reneg_raw):
            raise _fail("non-empty renegotiation_info in an initial hello", _A.HANDSHAKE_FAILURE)
        secure_reneg = reneg_raw is not None or EMPTY_RENEGOTIATION_INFO_SCSV in offered_suites
        profile: Profile | None = None
        srtp_raw = ext.get(_EXT_USE_SRTP)
        if srtp_raw is not None:
            offered_profiles, _mki = parse_use_srtp(srtp_raw)
            for candidate in offer.profile_ids:
                if candidate in offered_profiles:
                    profile = _PROFILES_BY_ID[candidate]
                    break
        # (tuple.__new__: without the NamedTuple's generated Python __new__)
        return tuple.__new__(
            _Choice,
            (
                suite,
                _GROUPS_BY_ID[group],
                scheme,
                profile,
                ems,
                secure_reneg,
                srtp_raw is not None,
                formats is not None,
            ),
        )

    def _send_server_flight(self, choice: _Choice) -> None:
        extensions = _server_extensions(
            choice.secure_renegotiation,
            choice.extended_master_secret,
            choice.client_offered_point_formats,
            None if choice.srtp_profile is None else int(choice.srtp_profile),
        )
        server_hello = encode_server_hello(
            _DTLS_1_2, self.server_random, b"", choice.suite, 0, extensions
        )
        self.share = KeyShare(choice.group, self.config.random)
        params = encode_ecdh_params(choice.group, self.share.public_bytes)
        certificate = self.config.certificate
        signature = sign(
            certificate.private_key,
            choice.scheme,
            self.client_random + self.server_random + params,
        )
        items = [
            self.own_body(_SERVER_HELLO, server_hello),
            self.own_body(_CERTIFICATE, _certificate_body(certificate.der)),
            self.own_body(
                _SERVER_KEY_EXCHANGE, params + encode_signature(choice.scheme, signature)
            ),
            self.own_body(_CERTIFICATE_REQUEST, self.config.offer.certificate_request),
            self.own_body(_SERVER_HELLO_DONE, b""),
        ]
        self.state = _S_WAIT_CERTIFICATE
        self.io.send_flight(items, expect_reply=True)


class _Choice(NamedTuple):
    suite: int
    group: NamedGroup
    scheme: SignatureScheme
    srtp_profile: Profile | None
    extended_master_secret: bool
    secure_renegotiation: bool
    client_offered_srtp: bool
    client_offered_point_formats: bool
