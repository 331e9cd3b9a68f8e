"""A DTLS server that answers many transport addresses (RFC 6347 4.2.1).

Before a client proves it can receive at its address (by echoing a cookie), the
listener keeps nothing about it: a cookie-less ClientHello is answered with a
HelloVerifyRequest computed from the datagram alone, and a DtlsConnection is created
only for a hello that carries a valid cookie. A flood of spoofed hellos therefore
costs one HMAC each and no memory.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

from webrtc_secure.certificate import Certificate
from webrtc_secure.dtls.connection import DtlsConnection, peer_authentication
from webrtc_secure.dtls.cookies import CookieFactory
from webrtc_secure.dtls.messages import (
    ClientHelloFields,
    HandshakeFragment,
    HandshakeType,
    HelloVerifyRequest,
    parse_client_hello,
    split_handshake_fragments,
)
from webrtc_secure.dtls.records import (
    MAX_SEQUENCE,
    ContentType,
    ProtocolVersion,
    Record,
    split_records,
)
from webrtc_secure.errors import MalformedPacket

logger = logging.getLogger(__name__)


class DtlsListener:
    """Demultiplexes datagrams by address and runs the stateless cookie exchange."""

    def __init__(
        self,
        certificate: Certificate,
        *,
        max_connections: int = 1024,
        cookie_factory: CookieFactory | None = None,
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
        # the listener runs the cookie exchange for its connections (see receive_datagram)
        self.connection_options = {**connection_options, "cookies": False}
        self.connections: dict[object, DtlsConnection] = {}
        self.hello_verify_requests_sent = 0
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
        parsed = _single_client_hello(data)
        if parsed is None or parsed.record_seq >= MAX_SEQUENCE:
            # (a hello at the last sequence number leaves no number for our answer)
            self.dropped += 1
            return None, []
        if not self.cookies.check(parsed.hello, addr):
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
        conn.receive_datagram(data, now, addr)
        return conn, []

    def forget(self, addr: object) -> None:
        """Drop the connection state of ``addr`` (closed or failed)."""
        self.connections.pop(addr, None)


class _Hello(NamedTuple):
    hello: ClientHelloFields
    record_seq: int
    message_seq: int


def _single_client_hello(data: bytes) -> _Hello | None:
    """The ClientHello of a datagram, when it holds a whole one in epoch 0."""
    records, _ = split_records(data)
    for ctype, _version, epoch_seq, fragment in records:
        if ctype != ContentType.HANDSHAKE or epoch_seq >> 48:
            continue
        try:
            for msg_type, length, message_seq, offset, body in split_handshake_fragments(fragment):
                if msg_type == HandshakeType.CLIENT_HELLO and offset == 0 and len(body) == length:
                    return _Hello(parse_client_hello(body), epoch_seq & MAX_SEQUENCE, message_seq)
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
