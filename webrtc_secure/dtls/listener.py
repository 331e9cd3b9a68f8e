"""A DTLS server that answers many transport addresses (RFC 6347 4.2.1, RFC 9147 5.1).

Before a client proves it can receive at its address (by echoing a cookie), the
listener keeps nothing about it: a cookie-less ClientHello is answered with a
HelloVerifyRequest (DTLS 1.2) or a HelloRetryRequest with a cookie (DTLS 1.3)
computed from the hello alone, and a DtlsConnection is created only for a hello that
carries a valid cookie. A flood of spoofed hellos therefore costs one HMAC each.

One exception, bounded: a DTLS 1.3 hello with an X25519MLKEM768 key share (about
1.4 KB) does not fit one datagram, and the cookie needs the whole hello (its hash
goes into the transcript). Such hellos are reassembled in at most ``max_pending``
small buffers (the oldest is evicted first; each holds at most 8 datagrams and 16 KB),
so a spoofed flood costs a bounded amount of memory and displaces only other
unverified hellos, never a connection.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, NamedTuple

from webrtc_secure.certificate import Certificate
from webrtc_secure.dtls.connection import (
    DEFAULT_DTLS_VERSIONS,
    DtlsConnection,
    parse_dtls_versions,
    peer_authentication,
)
from webrtc_secure.dtls.cookies import CookieFactory
from webrtc_secure.dtls.cookies13 import (
    RetryCookies,
    RetryState,
    client_hello1_hash,
    hello_retry_request,
)
from webrtc_secure.dtls.groups import DEFAULT_GROUPS as DEFAULT_GROUPS13
from webrtc_secure.dtls.handshake13 import offers_dtls13
from webrtc_secure.dtls.messages import (
    ClientHelloFields,
    HandshakeFragment,
    HandshakeType,
    HelloVerifyRequest,
    parse_client_hello,
    split_handshake_fragments,
)
from webrtc_secure.dtls.messages13 import (
    DTLS_1_3,
    ExtensionType13,
    parse_cookie,
    parse_key_share_client,
    parse_u16_list,
    transcript_message,
)
from webrtc_secure.dtls.reassembly import Reassembler
from webrtc_secure.dtls.records import (
    MAX_SEQUENCE,
    ContentType,
    ProtocolVersion,
    Record,
    split_records,
)
from webrtc_secure.dtls.records13 import encode_plaintext_record
from webrtc_secure.dtls.suites13 import DEFAULT_SUITES13, SUITES13, CipherSuite13
from webrtc_secure.errors import HandshakeFailure, MalformedPacket

logger = logging.getLogger(__name__)


class DtlsListener:
    """Demultiplexes datagrams by address and runs the stateless cookie exchange."""

    def __init__(
        self,
        certificate: Certificate,
        *,
        max_connections: int = 1024,
        cookie_factory: CookieFactory | None = None,
        retry_cookies: RetryCookies | None = None,
        max_pending: int = 256,
        **connection_options: Any,
    ) -> None:
        # the connections are created later, one per client that echoes its cookie: a
        # listener that cannot authenticate its peers is refused now, not at the first
        # hello (ConfigurationError, see peer_authentication)
        peer_authentication(
            connection_options.get("remote_fingerprints"),
            connection_options.get("verify_peer"),
            bool(connection_options.get("insecure_skip_fingerprint_check", False)),
            is_client=False,
            require_client_certificate=connection_options.get("require_client_certificate", True),
        )
        self.certificate = certificate
        self.max_connections = max_connections
        self.cookies = cookie_factory or CookieFactory()
        self.retry_cookies = retry_cookies or RetryCookies()
        self.dtls_versions = parse_dtls_versions(
            connection_options.get("dtls_versions", DEFAULT_DTLS_VERSIONS)
        )
        self._suites13 = tuple(
            int(x) for x in connection_options.get("cipher_suites13", DEFAULT_SUITES13)
        )
        self._groups13 = tuple(int(g) for g in connection_options.get("groups13", DEFAULT_GROUPS13))
        # the listener runs the cookie exchange for its connections (see receive_datagram);
        # a 1.3 connection opens the echoed cookie to rebuild its transcript
        self.connection_options = {
            **connection_options,
            "cookies": False,
            "retry_cookies": self.retry_cookies,
        }
        self.connections: dict[object, DtlsConnection] = {}
        self.max_pending = max_pending
        #: fragmented hellos being reassembled, per address (bounded, see above)
        self._pending: OrderedDict[object, _Pending] = OrderedDict()
        self.hello_verify_requests_sent = 0
        self.hello_retry_requests_sent = 0
        self.dropped = 0

    def receive_datagram(
        self, data: bytes, addr: object, now: float
    ) -> tuple[DtlsConnection | None, list[bytes]]:
        """Route one datagram.

        Returns the connection it was fed to (new or existing) and any stateless replies
        to send back to ``addr`` (a HelloVerifyRequest).
        """
        conn = self.connections.get(addr)
        if conn is not None:
            conn.receive_datagram(data, now, addr)
            return conn, []
        datagrams = [data]
        parsed = _single_client_hello(data)
        if parsed is None:
            assembled = self._reassemble(data, addr)
            if assembled is None:
                return None, []
            parsed, datagrams = assembled
        if parsed.record_seq >= MAX_SEQUENCE:
            # (a hello at the last sequence number leaves no number for our answer)
            self.dropped += 1
            return None, []
        try:
            version13 = DTLS_1_3 in self.dtls_versions and offers_dtls13(parsed.hello.extensions)
        except MalformedPacket:
            self.dropped += 1
            return None, []
        if version13:
            if not self._retry_cookie_valid(parsed, addr, now):
                reply = self._hello_retry_request(parsed, addr, now)
                if reply is None:
                    self.dropped += 1
                    return None, []
                self.hello_retry_requests_sent += 1
                return None, [reply]
        elif not self.cookies.check(parsed.hello, addr):
            self.hello_verify_requests_sent += 1
            cookie = self.cookies.make(parsed.hello, addr)
            return None, [_hello_verify_request(cookie, parsed)]
        if len(self.connections) >= self.max_connections:
            logger.warning(
                "DTLS listener full (%d connections); dropping hello", len(self.connections)
            )
            self.dropped += 1
            return None, []
        # The listener has just checked this hello's cookie: the connection, which is
        # bound to the address that proved it receives, does not check it again.
        conn = DtlsConnection(
            False,
            self.certificate,
            peer_address=addr,
            first_record_sequence=parsed.record_seq + 1,
            **self.connection_options,
        )
        self.connections[addr] = conn
        conn.connect(now)
        for datagram in datagrams:
            conn.receive_datagram(datagram, now, addr)
        return conn, []

    def forget(self, addr: object) -> None:
        """Drop the connection state of ``addr`` (closed or failed)."""
        self.connections.pop(addr, None)
        self._pending.pop(addr, None)

    # --- DTLS 1.3: fragmented hellos and HelloRetryRequest cookies ------------------------

    def _reassemble(self, data: bytes, addr: object) -> tuple[_Hello, list[bytes]] | None:
        """Feed a datagram holding ClientHello fragments to the address's bounded
        buffer; the hello and its datagrams once it is whole."""
        fragments = _client_hello_fragments(data)
        if not fragments:
            self.dropped += 1
            return None
        pending = self._pending.get(addr)
        if pending is None or pending.message_seq != fragments[0][3]:
            if len(self._pending) >= self.max_pending:
                self._pending.popitem(last=False)
            pending = _Pending(fragments[0][3])
            self._pending[addr] = pending
        if len(pending.datagrams) >= _MAX_PENDING_DATAGRAMS:
            self.dropped += 1
            return None
        pending.datagrams.append(data)
        record_seq = 0
        for record_seq, msg_type, length, message_seq, offset, body in fragments:
            pending.reassembler.accept(msg_type, length, message_seq, offset, body, 0)
            pending.record_seq = max(pending.record_seq, record_seq)
        message = pending.reassembler.pop_ready()
        if message is None:
            return None
        del self._pending[addr]
        try:
            hello = parse_client_hello(message.body)
        except MalformedPacket:
            self.dropped += 1
            return None
        return (
            _Hello(hello, pending.record_seq, message.message_seq, message.body),
            pending.datagrams,
        )

    def _retry_cookie_valid(self, parsed: _Hello, addr: object, now: float) -> bool:
        raw = parsed.hello.extensions.get(ExtensionType13.COOKIE)
        if raw is None:
            return False
        try:
            cookie = parse_cookie(raw)
        except MalformedPacket:
            return False
        return self.retry_cookies.open(cookie, addr, now) is not None

    def _hello_retry_request(self, parsed: _Hello, addr: object, now: float) -> bytes | None:
        """A stateless HelloRetryRequest with a cookie (and a key share request when
        the hello has no share we take), echoing the hello's record and message
        numbers; None when no suite or group is in common (the connection would
        refuse the hello anyway)."""
        hello = parsed.hello
        suite_id = next((s for s in self._suites13 if s in hello.cipher_suites), None)
        try:
            groups_raw = hello.extensions.get(ExtensionType13.SUPPORTED_GROUPS)
            shares_raw = hello.extensions.get(ExtensionType13.KEY_SHARE)
            offered = parse_u16_list(groups_raw) if groups_raw is not None else []
            shares = (
                [e.group for e in parse_key_share_client(shares_raw)]
                if shares_raw is not None
                else []
            )
        except (MalformedPacket, HandshakeFailure):
            return None
        if suite_id is None:
            return None
        group = 0
        if not any(g in shares for g in self._groups13):
            group = next((g for g in self._groups13 if g in offered), 0)
            if not group:
                return None
        suite = SUITES13[CipherSuite13(suite_id)]
        ch1 = transcript_message(HandshakeType.CLIENT_HELLO, parsed.body)
        state = RetryState(suite_id, group, client_hello1_hash(suite.hash_name, ch1), now)
        body = hello_retry_request(suite_id, group, self.retry_cookies.make(state, addr))
        fragment = HandshakeFragment(
            HandshakeType.SERVER_HELLO, len(body), parsed.message_seq, 0, body
        ).serialize()
        return encode_plaintext_record(ContentType.HANDSHAKE, fragment, parsed.record_seq)


_MAX_PENDING_DATAGRAMS = 8
_MAX_PENDING_HELLO = 16 * 1024


class _Pending:
    """One address's fragmented hello being reassembled."""

    __slots__ = ("datagrams", "message_seq", "reassembler", "record_seq")

    def __init__(self, message_seq: int) -> None:
        self.message_seq = message_seq
        self.reassembler = Reassembler(max_message_size=_MAX_PENDING_HELLO, max_messages_ahead=1)
        self.reassembler.reset(message_seq)
        self.datagrams: list[bytes] = []
        self.record_seq = 0


def _client_hello_fragments(data: bytes) -> list[tuple[int, int, int, int, int, bytes]]:
    """(record_seq, type, length, message_seq, offset, body) of the ClientHello
    fragments in an epoch-0 datagram (all of one message_seq), or [] for anything else."""
    records, _ = split_records(data)
    out: list[tuple[int, int, int, int, int, bytes]] = []
    for ctype, _version, epoch_seq, fragment in records:
        if ctype != ContentType.HANDSHAKE or epoch_seq >> 48:
            return []
        try:
            for msg_type, length, message_seq, offset, body in split_handshake_fragments(fragment):
                if msg_type != HandshakeType.CLIENT_HELLO or length > _MAX_PENDING_HELLO:
                    return []
                if out and out[0][3] != message_seq:
                    return []
                out.append((epoch_seq & MAX_SEQUENCE, msg_type, length, message_seq, offset, body))
        except MalformedPacket:
            return []
    return out


class _Hello(NamedTuple):
    hello: ClientHelloFields
    record_seq: int
    message_seq: int
    body: bytes


def _single_client_hello(data: bytes) -> _Hello | None:
    """The ClientHello of a datagram, when it holds a whole one in epoch 0."""
    records, _ = split_records(data)
    for ctype, _version, epoch_seq, fragment in records:
        if ctype != ContentType.HANDSHAKE or epoch_seq >> 48:
            continue
        try:
            for msg_type, length, message_seq, offset, body in split_handshake_fragments(fragment):
                if msg_type == HandshakeType.CLIENT_HELLO and offset == 0 and len(body) == length:
                    return _Hello(
                        parse_client_hello(body), epoch_seq & MAX_SEQUENCE, message_seq, body
                    )
        except MalformedPacket:
            return None
    return None


def _hello_verify_request(cookie: bytes, hello: _Hello) -> bytes:
    """HelloVerifyRequest echoing the hello's record sequence number and message_seq,
    so that the reply needs no state (RFC 6347 4.2.1)."""
    body = HelloVerifyRequest(ProtocolVersion.DTLS_1_0, cookie).serialize()
    fragment = HandshakeFragment(
        HandshakeType.HELLO_VERIFY_REQUEST, len(body), hello.message_seq, 0, body
    )
    return Record(
        ContentType.HANDSHAKE,
        ProtocolVersion.DTLS_1_0,
        0,
        hello.record_seq,
        fragment.serialize(),
    ).serialize()
