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
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from webrtc_secure.certificate import Certificate, Fingerprint
from webrtc_secure.dtls import keys
from webrtc_secure.dtls.codec import u16_list
from webrtc_secure.dtls.cookies import CookieFactory
from webrtc_secure.dtls.crypto import KeyShare, PublicKey, choose_scheme, sign, verify
from webrtc_secure.dtls.flights import FlightItem
from webrtc_secure.dtls.messages import (
    CLIENT_CERT_ECDSA_SIGN,
    CLIENT_CERT_RSA_SIGN,
    EMPTY_RENEGOTIATION_INFO_SCSV,
    AlertDescription,
    CertificateMessage,
    CertificateRequest,
    CertificateVerify,
    ClientHello,
    ClientKeyExchange,
    Extension,
    ExtensionType,
    Finished,
    HandshakeType,
    HelloVerifyRequest,
    ServerHello,
    ServerHelloDone,
    ServerKeyExchange,
    encode_use_srtp,
    enum_name,
    find_extension,
    framed_message,
    parse_ec_point_formats,
    parse_renegotiation_info,
    parse_u16_list_extension,
    parse_use_srtp,
)
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


@dataclass(frozen=True)
class HandshakeConfig:
    """What an endpoint offers and requires; shared by client and server."""

    certificate: Certificate
    cipher_suites: tuple[CipherSuite, ...]
    groups: tuple[NamedGroup, ...]
    signature_schemes: tuple[SignatureScheme, ...]
    srtp_profiles: tuple[Profile, ...]
    require_extended_master_secret: bool
    require_client_certificate: bool
    remote_fingerprints: tuple[Fingerprint, ...] | None
    verify_peer: Callable[[bytes], bool] | None
    random: Callable[[int], bytes]


class HandshakeIO(Protocol):
    """What the handshake needs from the connection."""

    def send_flight(self, items: list[FlightItem], *, expect_reply: bool) -> None: ...
    def send_stateless(self, items: list[FlightItem]) -> None: ...
    def install_keys(self, read: RecordProtection, write: RecordProtection) -> None: ...
    def handshake_complete(self) -> None: ...
    def log_master_secret(self, client_random: bytes, master: bytes) -> None: ...


def _fail(message: str, alert: AlertDescription) -> HandshakeFailure:
    return HandshakeFailure(message, alert)


def _decode(parse: Callable[[bytes], object], body: bytes) -> object:
    try:
        return parse(body)
    except MalformedPacket as exc:
        raise _fail(f"cannot decode handshake message: {exc}", _A.DECODE_ERROR) from None


class Handshake:
    """State shared by both roles: transcript, randoms, negotiated parameters, keys."""

    is_client: bool

    def __init__(self, config: HandshakeConfig, io: HandshakeIO) -> None:
        self.config = config
        self.io = io
        self.transcript = bytearray()
        self.send_seq = 0
        self.client_random = b""
        self.server_random = b""
        self.suite: SuiteInfo | None = None
        self.group: NamedGroup | None = None
        self.srtp_profile: Profile | None = None
        self.extended_master_secret = False
        self.master_secret = b""
        self.peer_certificate: bytes | None = None
        self.peer_public_key: PublicKey | None = None
        self.done = False

    # --- helpers shared by both roles ---------------------------------------------------

    def own(self, message: object, epoch: int = 0) -> FlightItem:
        """Frame one of our messages, add it to the transcript, and return its flight item."""
        msg_type = int(message.msg_type)  # type: ignore[attr-defined]
        body: bytes = message.serialize()  # type: ignore[attr-defined]
        self.transcript += framed_message(msg_type, self.send_seq, body)
        item = FlightItem(ContentType.HANDSHAKE, epoch, msg_type, self.send_seq, body)
        self.send_seq += 1
        return item

    def absorb(self, message: Message) -> None:
        self.transcript += framed_message(message.msg_type, message.message_seq, message.body)

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
        if not isinstance(public_key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
            raise _fail("peer certificate key is neither ECDSA nor RSA", _A.UNSUPPORTED_CERTIFICATE)
        fingerprints = self.config.remote_fingerprints
        if fingerprints is not None and not any(fp.matches(der) for fp in fingerprints):
            raise FingerprintMismatch(
                "peer certificate does not match the remote fingerprint", _A.BAD_CERTIFICATE
            )
        if self.config.verify_peer is not None and not self.config.verify_peer(der):
            raise _fail("peer certificate refused by the verify callback", _A.BAD_CERTIFICATE)
        self.peer_certificate = der
        self.peer_public_key = public_key

    def derive_keys(self, pre_master: bytes) -> None:
        """Master secret (extended when negotiated) and the epoch-1 record keys."""
        suite = self.suite
        assert suite is not None
        if self.extended_master_secret:
            session_hash = hashlib.new(suite.hash_name, self.transcript).digest()
            self.master_secret = keys.extended_master_secret(
                suite.hash_name, pre_master, session_hash
            )
        else:
            self.master_secret = keys.master_secret(
                suite.hash_name, pre_master, self.client_random, self.server_random
            )
        self.io.log_master_secret(self.client_random, self.master_secret)
        block = keys.key_block(
            suite.hash_name,
            self.master_secret,
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

    def finished_for(self, client_side: bool) -> bytes:
        return keys.verify_data(
            self.hash_name(), self.master_secret, client_side, bytes(self.transcript)
        )

    def check_finished(self, message: Message) -> None:
        if message.epoch == 0:
            raise _fail("Finished arrived unprotected", _A.UNEXPECTED_MESSAGE)
        finished = _decode(Finished.parse, message.body)
        assert isinstance(finished, Finished)
        expected = self.finished_for(not self.is_client)
        if not hmac.compare_digest(finished.verify_data, expected):
            raise _fail("Finished verify_data does not match the transcript", _A.DECRYPT_ERROR)

    def handle(self, message: Message) -> None:
        raise NotImplementedError


class _ClientState(Enum):
    START = auto()
    WAIT_SERVER_HELLO = auto()
    WAIT_CERTIFICATE = auto()
    WAIT_KEY_EXCHANGE = auto()
    WAIT_CERT_REQUEST_OR_DONE = auto()
    WAIT_HELLO_DONE = auto()
    WAIT_FINISHED = auto()
    DONE = auto()


class ClientHandshake(Handshake):
    is_client = True

    def __init__(self, config: HandshakeConfig, io: HandshakeIO) -> None:
        super().__init__(config, io)
        self.state = _ClientState.START
        self.cookie = b""
        self.hello_verify_count = 0
        self.hello: ClientHello | None = None
        self.hello_item: FlightItem | None = None
        self.certificate_request: CertificateRequest | None = None
        self.server_key_exchange: ServerKeyExchange | None = None

    def start(self) -> None:
        self.client_random = self.config.random(32)
        extensions = [
            Extension(ExtensionType.EXTENDED_MASTER_SECRET, b""),
            Extension(ExtensionType.RENEGOTIATION_INFO, b"\x00"),
            Extension(ExtensionType.SUPPORTED_GROUPS, u16_list(list(self.config.groups))),
            Extension(ExtensionType.EC_POINT_FORMATS, b"\x01\x00"),
            Extension(
                ExtensionType.SIGNATURE_ALGORITHMS, u16_list(list(self.config.signature_schemes))
            ),
        ]
        if self.config.srtp_profiles:
            extensions.append(
                Extension(ExtensionType.USE_SRTP, encode_use_srtp(list(self.config.srtp_profiles)))
            )
        self.hello = ClientHello(
            client_version=ProtocolVersion.DTLS_1_2,
            random=self.client_random,
            session_id=b"",
            cookie=b"",
            # our own key type does not restrict the suites: it only signs CertificateVerify
            cipher_suites=[int(s) for s in self.config.cipher_suites],
            compression_methods=b"\x00",
            extensions=extensions,
        )
        self._send_hello()

    def _send_hello(self) -> None:
        assert self.hello is not None
        hello = ClientHello(
            self.hello.client_version,
            self.hello.random,
            self.hello.session_id,
            self.cookie,
            self.hello.cipher_suites,
            self.hello.compression_methods,
            self.hello.extensions,
        )
        # the transcript starts with the hello the server finally answers
        self.transcript = bytearray()
        item = self.own(hello)
        self.state = _ClientState.WAIT_SERVER_HELLO
        self.io.send_flight([item], expect_reply=True)

    def handle(self, message: Message) -> None:
        t = message.msg_type
        state = self.state
        if message.epoch != 0 and t != HandshakeType.FINISHED:
            raise _fail("handshake message other than Finished in epoch 1", _A.UNEXPECTED_MESSAGE)
        if state == _ClientState.WAIT_SERVER_HELLO and t == HandshakeType.HELLO_VERIFY_REQUEST:
            self._on_hello_verify_request(message)
        elif state == _ClientState.WAIT_SERVER_HELLO and t == HandshakeType.SERVER_HELLO:
            self._on_server_hello(message)
        elif state == _ClientState.WAIT_CERTIFICATE and t == HandshakeType.CERTIFICATE:
            self.absorb(message)
            cert = _decode(CertificateMessage.parse, message.body)
            assert isinstance(cert, CertificateMessage)
            self.accept_certificate(cert.certificates)
            assert self.suite is not None
            if self.suite.uses_rsa != isinstance(self.peer_public_key, rsa.RSAPublicKey):
                raise _fail(
                    "server certificate key does not fit the suite", _A.UNSUPPORTED_CERTIFICATE
                )
            self.state = _ClientState.WAIT_KEY_EXCHANGE
        elif state == _ClientState.WAIT_KEY_EXCHANGE and t == HandshakeType.SERVER_KEY_EXCHANGE:
            self._on_server_key_exchange(message)
        elif (
            state == _ClientState.WAIT_CERT_REQUEST_OR_DONE
            and t == HandshakeType.CERTIFICATE_REQUEST
        ):
            self.absorb(message)
            request = _decode(CertificateRequest.parse, message.body)
            assert isinstance(request, CertificateRequest)
            self.certificate_request = request
            self.state = _ClientState.WAIT_HELLO_DONE
        elif (
            state in (_ClientState.WAIT_CERT_REQUEST_OR_DONE, _ClientState.WAIT_HELLO_DONE)
            and t == HandshakeType.SERVER_HELLO_DONE
        ):
            self.absorb(message)
            _decode(ServerHelloDone.parse, message.body)
            self._send_client_flight()
        elif state == _ClientState.WAIT_FINISHED and t == HandshakeType.FINISHED:
            self.check_finished(message)
            self.absorb(message)
            self.state = _ClientState.DONE
            self.done = True
            self.io.handshake_complete()
        else:
            raise _fail(
                f"unexpected {enum_name(HandshakeType, t)} in {state.name}", _A.UNEXPECTED_MESSAGE
            )

    def _on_hello_verify_request(self, message: Message) -> None:
        hvr = _decode(HelloVerifyRequest.parse, message.body)
        assert isinstance(hvr, HelloVerifyRequest)
        if not hvr.cookie:
            raise _fail("HelloVerifyRequest with an empty cookie", _A.ILLEGAL_PARAMETER)
        self.hello_verify_count += 1
        if self.hello_verify_count > MAX_HELLO_VERIFY_REQUESTS:
            raise _fail("too many HelloVerifyRequests", _A.HANDSHAKE_FAILURE)
        self.cookie = hvr.cookie
        self._send_hello()

    def _on_server_hello(self, message: Message) -> None:
        self.absorb(message)
        hello = _decode(ServerHello.parse, message.body)
        assert isinstance(hello, ServerHello)
        if hello.server_version != ProtocolVersion.DTLS_1_2:
            raise _fail(f"server chose version {hello.server_version:#06x}", _A.PROTOCOL_VERSION)
        if hello.cipher_suite not in self.config.cipher_suites:
            raise _fail("server chose a cipher suite we did not offer", _A.ILLEGAL_PARAMETER)
        if hello.compression_method != 0:
            raise _fail("server chose compression", _A.ILLEGAL_PARAMETER)
        offered = {e.type for e in (self.hello.extensions if self.hello else [])}
        for ext in hello.extensions:
            if ext.type not in offered:
                raise _fail(f"unsolicited extension {ext.type}", _A.UNSUPPORTED_EXTENSION)
        self.server_random = hello.random
        self.suite = SUITES[CipherSuite(hello.cipher_suite)]
        try:
            self._check_server_extensions(hello.extensions)
        except MalformedPacket as exc:
            raise _fail(f"malformed ServerHello extension: {exc}", _A.DECODE_ERROR) from None
        self.state = _ClientState.WAIT_CERTIFICATE

    def _check_server_extensions(self, extensions: list[Extension]) -> None:
        ems = find_extension(extensions, ExtensionType.EXTENDED_MASTER_SECRET)
        if ems is not None and ems:
            raise MalformedPacket("extended_master_secret must be empty")
        self.extended_master_secret = ems is not None
        if not self.extended_master_secret and self.config.require_extended_master_secret:
            raise _fail("server did not negotiate extended master secret", _A.HANDSHAKE_FAILURE)
        reneg = find_extension(extensions, ExtensionType.RENEGOTIATION_INFO)
        if reneg is not None and parse_renegotiation_info(reneg):
            raise _fail(
                "non-empty renegotiation_info in an initial handshake", _A.HANDSHAKE_FAILURE
            )
        formats = find_extension(extensions, ExtensionType.EC_POINT_FORMATS)
        if formats is not None and 0 not in parse_ec_point_formats(formats):
            raise _fail("server cannot take uncompressed points", _A.ILLEGAL_PARAMETER)
        srtp = find_extension(extensions, ExtensionType.USE_SRTP)
        if srtp is not None:
            profiles, mki = parse_use_srtp(srtp)
            if len(profiles) != 1 or profiles[0] not in self.config.srtp_profiles:
                raise _fail("server chose an SRTP profile we did not offer", _A.ILLEGAL_PARAMETER)
            if mki:
                raise _fail("server returned an MKI we did not offer", _A.ILLEGAL_PARAMETER)
            self.srtp_profile = Profile(profiles[0])

    def _on_server_key_exchange(self, message: Message) -> None:
        self.absorb(message)
        ske = _decode(ServerKeyExchange.parse, message.body)
        assert isinstance(ske, ServerKeyExchange)
        if ske.named_group not in self.config.groups:
            raise _fail("server chose a group we did not offer", _A.ILLEGAL_PARAMETER)
        if ske.signature_scheme not in self.config.signature_schemes:
            raise _fail("server signed with a scheme we did not offer", _A.ILLEGAL_PARAMETER)
        assert self.peer_public_key is not None
        verify(
            self.peer_public_key,
            ske.signature_scheme,
            ske.signature,
            self.client_random + self.server_random + ske.params(),
        )
        self.group = NamedGroup(ske.named_group)
        self.server_key_exchange = ske
        self.state = _ClientState.WAIT_CERT_REQUEST_OR_DONE

    def _send_client_flight(self) -> None:
        ske = self.server_key_exchange
        assert ske is not None and self.group is not None
        share = KeyShare(self.group, self.config.random)
        pre_master = share.exchange(ske.public_key)
        items: list[FlightItem] = []
        request = self.certificate_request
        if request is not None:
            items.append(self.own(CertificateMessage([self.config.certificate.der])))
        items.append(self.own(ClientKeyExchange(share.public_bytes)))
        self.derive_keys(pre_master)
        if request is not None:
            key = self.config.certificate.private_key
            scheme = choose_scheme(key, request.signature_schemes)
            if scheme is None:
                raise _fail(
                    "no common signature scheme for CertificateVerify", _A.HANDSHAKE_FAILURE
                )
            signature = sign(key, scheme, bytes(self.transcript))
            items.append(self.own(CertificateVerify(scheme, signature)))
        items.append(FlightItem(ContentType.CHANGE_CIPHER_SPEC, 0, body=b"\x01"))
        items.append(self.own(Finished(self.finished_for(True)), epoch=1))
        self.state = _ClientState.WAIT_FINISHED
        self.io.send_flight(items, expect_reply=True)


class _ServerState(Enum):
    WAIT_CLIENT_HELLO = auto()
    WAIT_CERTIFICATE = auto()
    WAIT_KEY_EXCHANGE = auto()
    WAIT_CERTIFICATE_VERIFY = auto()
    WAIT_FINISHED = auto()
    DONE = auto()


class ServerHandshake(Handshake):
    is_client = False

    def __init__(
        self,
        config: HandshakeConfig,
        io: HandshakeIO,
        cookies: CookieFactory | None,
        peer_address: object = None,
    ) -> None:
        super().__init__(config, io)
        self.state = _ServerState.WAIT_CLIENT_HELLO
        self.cookies = cookies
        self.peer_address = peer_address
        self.share: KeyShare | None = None

    @property
    def waiting_for_hello(self) -> bool:
        return self.state == _ServerState.WAIT_CLIENT_HELLO

    def handle(self, message: Message) -> None:
        t = message.msg_type
        state = self.state
        if message.epoch != 0 and t != HandshakeType.FINISHED:
            raise _fail("handshake message other than Finished in epoch 1", _A.UNEXPECTED_MESSAGE)
        if state == _ServerState.WAIT_CLIENT_HELLO and t == HandshakeType.CLIENT_HELLO:
            self._on_client_hello(message)
        elif state == _ServerState.WAIT_CERTIFICATE and t == HandshakeType.CERTIFICATE:
            self.absorb(message)
            cert = _decode(CertificateMessage.parse, message.body)
            assert isinstance(cert, CertificateMessage)
            if not cert.certificates:
                if self.config.require_client_certificate:
                    raise _fail("client sent no certificate", _A.HANDSHAKE_FAILURE)
            else:
                self.accept_certificate(cert.certificates)
            self.state = _ServerState.WAIT_KEY_EXCHANGE
        elif state == _ServerState.WAIT_KEY_EXCHANGE and t == HandshakeType.CLIENT_KEY_EXCHANGE:
            self.absorb(message)
            cke = _decode(ClientKeyExchange.parse, message.body)
            assert isinstance(cke, ClientKeyExchange) and self.share is not None
            self.derive_keys(self.share.exchange(cke.public_key))
            self.state = (
                _ServerState.WAIT_CERTIFICATE_VERIFY
                if self.peer_public_key is not None
                else _ServerState.WAIT_FINISHED
            )
        elif (
            state == _ServerState.WAIT_CERTIFICATE_VERIFY and t == HandshakeType.CERTIFICATE_VERIFY
        ):
            cv = _decode(CertificateVerify.parse, message.body)
            assert isinstance(cv, CertificateVerify) and self.peer_public_key is not None
            if cv.signature_scheme not in self.config.signature_schemes:
                raise _fail(
                    "CertificateVerify with a scheme we did not request", _A.ILLEGAL_PARAMETER
                )
            verify(self.peer_public_key, cv.signature_scheme, cv.signature, bytes(self.transcript))
            self.absorb(message)
            self.state = _ServerState.WAIT_FINISHED
        elif state == _ServerState.WAIT_FINISHED and t == HandshakeType.FINISHED:
            self.check_finished(message)
            self.absorb(message)
            items = [
                FlightItem(ContentType.CHANGE_CIPHER_SPEC, 0, body=b"\x01"),
                self.own(Finished(self.finished_for(False)), epoch=1),
            ]
            self.state = _ServerState.DONE
            self.done = True
            self.io.send_flight(items, expect_reply=False)
            self.io.handshake_complete()
        else:
            raise _fail(
                f"unexpected {enum_name(HandshakeType, t)} in {state.name}", _A.UNEXPECTED_MESSAGE
            )

    def _on_client_hello(self, message: Message) -> None:
        hello = _decode(ClientHello.parse, message.body)
        assert isinstance(hello, ClientHello)
        if hello.client_version >> 8 != 0xFE or hello.client_version > ProtocolVersion.DTLS_1_2:
            raise _fail(
                f"client offers version {hello.client_version:#06x}, not DTLS 1.2",
                _A.PROTOCOL_VERSION,
            )
        if self.cookies is not None and not self.cookies.check(hello, self.peer_address):
            # stateless: answer and forget; the client's retransmission timer drives retries
            hvr = HelloVerifyRequest(
                ProtocolVersion.DTLS_1_0, self.cookies.make(hello, self.peer_address)
            )
            self.io.send_stateless(
                [
                    FlightItem(
                        ContentType.HANDSHAKE,
                        0,
                        HandshakeType.HELLO_VERIFY_REQUEST,
                        message.message_seq,
                        hvr.serialize(),
                    )
                ]
            )
            return
        if 0 not in hello.compression_methods:
            raise _fail("client does not offer null compression", _A.ILLEGAL_PARAMETER)
        try:
            choice = self._negotiate(hello)
        except MalformedPacket as exc:
            raise _fail(f"malformed ClientHello extension: {exc}", _A.DECODE_ERROR) from None
        self.send_seq = message.message_seq
        self.absorb(message)
        self.client_random = hello.random
        self.server_random = self.config.random(32)
        self.suite = SUITES[choice.suite]
        self.group = choice.group
        self.srtp_profile = choice.srtp_profile
        self.extended_master_secret = choice.extended_master_secret
        self._send_server_flight(hello, choice)

    def _negotiate(self, hello: ClientHello) -> _Choice:
        ext = hello.extensions
        rsa_cert = self.config.certificate.is_rsa
        suite = next(
            (
                s
                for s in self.config.cipher_suites
                if s in hello.cipher_suites and SUITES[s].uses_rsa == rsa_cert
            ),
            None,
        )
        if suite is None:
            raise _fail("no cipher suite in common", _A.HANDSHAKE_FAILURE)
        groups_raw = find_extension(ext, ExtensionType.SUPPORTED_GROUPS)
        offered_groups = (
            parse_u16_list_extension(groups_raw)
            if groups_raw is not None
            else [NamedGroup.SECP256R1]
        )
        group = next((g for g in self.config.groups if g in offered_groups), None)
        if group is None:
            raise _fail("no ECDHE group in common", _A.HANDSHAKE_FAILURE)
        formats = find_extension(ext, ExtensionType.EC_POINT_FORMATS)
        if formats is not None and 0 not in parse_ec_point_formats(formats):
            raise _fail("client cannot take uncompressed points", _A.ILLEGAL_PARAMETER)
        schemes_raw = find_extension(ext, ExtensionType.SIGNATURE_ALGORITHMS)
        # RFC 5246 7.4.1.4.1: absent means sha1, which we do not do; assume SHA-256
        offered_schemes: list[int] = (
            parse_u16_list_extension(schemes_raw)
            if schemes_raw is not None
            else [
                int(SignatureScheme.ECDSA_SECP256R1_SHA256),
                int(SignatureScheme.RSA_PKCS1_SHA256),
            ]
        )
        scheme = choose_scheme(self.config.certificate.private_key, offered_schemes)
        if scheme is None or scheme not in self.config.signature_schemes:
            raise _fail("no signature scheme in common", _A.HANDSHAKE_FAILURE)
        ems_raw = find_extension(ext, ExtensionType.EXTENDED_MASTER_SECRET)
        if ems_raw:
            raise MalformedPacket("extended_master_secret must be empty")
        ems = ems_raw is not None
        if not ems and self.config.require_extended_master_secret:
            raise _fail("client does not offer extended master secret", _A.HANDSHAKE_FAILURE)
        reneg_raw = find_extension(ext, ExtensionType.RENEGOTIATION_INFO)
        if reneg_raw is not None and parse_renegotiation_info(reneg_raw):
            raise _fail("non-empty renegotiation_info in an initial hello", _A.HANDSHAKE_FAILURE)
        secure_reneg = reneg_raw is not None or EMPTY_RENEGOTIATION_INFO_SCSV in hello.cipher_suites
        profile: Profile | None = None
        srtp_raw = find_extension(ext, ExtensionType.USE_SRTP)
        if srtp_raw is not None:
            offered_profiles, _mki = parse_use_srtp(srtp_raw)
            profile = next((p for p in self.config.srtp_profiles if p in offered_profiles), None)
        return _Choice(
            suite, NamedGroup(group), scheme, profile, ems, secure_reneg, srtp_raw is not None
        )

    def _send_server_flight(self, hello: ClientHello, choice: _Choice) -> None:
        extensions: list[Extension] = []
        if choice.secure_renegotiation:
            extensions.append(Extension(ExtensionType.RENEGOTIATION_INFO, b"\x00"))
        if choice.extended_master_secret:
            extensions.append(Extension(ExtensionType.EXTENDED_MASTER_SECRET, b""))
        if find_extension(hello.extensions, ExtensionType.EC_POINT_FORMATS) is not None:
            extensions.append(Extension(ExtensionType.EC_POINT_FORMATS, b"\x01\x00"))
        if choice.srtp_profile is not None:
            extensions.append(
                Extension(ExtensionType.USE_SRTP, encode_use_srtp([choice.srtp_profile]))
            )
        server_hello = ServerHello(
            ProtocolVersion.DTLS_1_2, self.server_random, b"", choice.suite, 0, extensions
        )
        self.share = KeyShare(choice.group, self.config.random)
        params = ServerKeyExchange(choice.group, self.share.public_bytes, choice.scheme, b"")
        signature = sign(
            self.config.certificate.private_key,
            choice.scheme,
            self.client_random + self.server_random + params.params(),
        )
        items = [
            self.own(server_hello),
            self.own(CertificateMessage([self.config.certificate.der])),
            self.own(
                ServerKeyExchange(choice.group, self.share.public_bytes, choice.scheme, signature)
            ),
            self.own(
                CertificateRequest(
                    bytes([CLIENT_CERT_ECDSA_SIGN, CLIENT_CERT_RSA_SIGN]),
                    [int(s) for s in self.config.signature_schemes],
                )
            ),
            self.own(ServerHelloDone()),
        ]
        self.state = _ServerState.WAIT_CERTIFICATE
        self.io.send_flight(items, expect_reply=True)


@dataclass(frozen=True)
class _Choice:
    suite: CipherSuite
    group: NamedGroup
    scheme: SignatureScheme
    srtp_profile: Profile | None
    extended_master_secret: bool
    secure_renegotiation: bool
    client_offered_srtp: bool
