"""One exception tree for the whole library.

Every piece of bad input maps to one of these classes; callers can catch
:class:`WebrtcSecureError` to handle anything the library raises on purpose.
"""

from __future__ import annotations


class WebrtcSecureError(Exception):
    """Base class of every error raised on purpose by webrtc_secure."""


class ConfigurationError(WebrtcSecureError):
    """The caller asked for a setup the library refuses to run.

    Raised when an object is constructed, before anything touches the network: for
    example a DTLS endpoint given no way to authenticate its peer (no fingerprints, no
    verification callback and no explicit ``insecure_skip_fingerprint_check=True``).
    """


class InvalidStateError(WebrtcSecureError):
    """The call does not fit the object's state, and changed nothing.

    For example a second or concurrent ``connect()``, ``create_offer()`` or
    ``create_answer()`` on a :class:`~webrtc_secure.peer.SecurePeer` (renegotiation is
    not supported), a call on a closed peer, or a trickled candidate after
    end-of-candidates. A connection that was up stays up.
    """


# --- packet-level failures (shared by SRTP and the DTLS record layer) -------------


class MalformedPacket(WebrtcSecureError):
    """Input bytes do not parse: truncated, bad version, inconsistent lengths."""


class AuthenticationFailed(WebrtcSecureError):
    """The packet's authentication tag did not verify; nothing was decrypted."""


class ReplayDetected(WebrtcSecureError):
    """The packet's index was already seen or lies behind the replay window."""


class PacketTooLarge(WebrtcSecureError):
    """A packet to send would not fit in one UDP datagram (65,507 octets) once
    protected; nothing was sent."""


# --- SRTP ---------------------------------------------------------------------------


class SrtpError(WebrtcSecureError):
    """Base class of SRTP/SRTCP specific failures."""


class KeyLifetimeExceeded(SrtpError):
    """The master key protected its maximum number of packets (RFC 3711 9.2)."""


class StreamLimitExceeded(SrtpError):
    """A packet names a new SSRC but the context already tracks its maximum."""


# --- DTLS ---------------------------------------------------------------------------


class DtlsError(WebrtcSecureError):
    """Base class of DTLS failures.

    ``alert`` is the TLS AlertDescription value that was (or will be) sent to the
    peer for this failure, or ``None`` when no alert applies.
    """

    def __init__(self, message: str, alert: int | None = None) -> None:
        super().__init__(message)
        self.alert = alert


class HandshakeFailure(DtlsError):
    """The handshake cannot complete; a fatal alert was sent to the peer."""


class HandshakeTimeout(DtlsError):
    """The handshake did not complete: a flight went unanswered through every
    retransmission, or a configured time bound passed."""


class FirstFlightTimeout(HandshakeTimeout):
    """The peer's first handshake flight did not arrive within ``first_flight_timeout``
    of ``connect()``: as the DTLS server no ClientHello came (the remote side never
    started its handshake), as the client nothing answered our ClientHello."""


class AlertReceived(DtlsError):
    """The peer sent a fatal alert."""


class ConnectionClosed(DtlsError):
    """The connection is closed (close_notify, fatal alert or local close)."""


# --- certificates and signaling -----------------------------------------------------


class CertificateError(WebrtcSecureError):
    """A certificate or private key cannot be loaded or used."""


class FingerprintMismatch(HandshakeFailure):
    """The peer's certificate does not match the remote ``a=fingerprint``.

    A man-in-the-middle or a tampered session description; the connection is ended
    with a fatal bad_certificate alert before any data or media flows.
    """


class SdpError(WebrtcSecureError):
    """A session description is malformed or lacks a required attribute."""


class IceError(WebrtcSecureError):
    """ICE could not establish a path to the peer."""


# --- SCTP ---------------------------------------------------------------------------


class SctpError(WebrtcSecureError):
    """Base class of SCTP failures (codec and association)."""


class MalformedSctpPacket(SctpError, MalformedPacket):
    """An SCTP packet, chunk, parameter or error cause does not parse.

    Raised for every encoding defect: truncation, a length field that lies about the
    bytes present, a count that overruns its chunk, a chunk shorter than its fixed part.
    """


class ChecksumMismatch(MalformedSctpPacket):
    """The packet's CRC32c does not match its contents (RFC 9260 6.8)."""


# SCTP association errors (sctp/association.py): what send() raises and what an
# AssociationClosed event carries.


class AssociationAborted(SctpError):
    """The association was aborted: the peer sent ABORT (its error causes are in
    ``causes``, as text) or the local side called ``abort``."""

    def __init__(self, message: str, causes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.causes = causes


class AssociationTimeout(SctpError):
    """The peer stopped answering: INIT, COOKIE-ECHO, DATA, HEARTBEAT or SHUTDOWN went
    unacknowledged more often than the configured retransmission limit allows."""


class SctpProtocolViolation(SctpError):
    """The peer broke the protocol in a way that ends the association."""


class MessageTooLarge(SctpError):
    """A message exceeds the peer's maximum message size (SDP ``a=max-message-size``)."""


class SendBufferFull(SctpError):
    """Queuing the message would exceed the association's send buffer."""


class InvalidAssociationState(SctpError):
    """The operation is not possible now: the association is closing or closed, the
    extension it needs was not negotiated, or the stream is being reset."""


class StreamResetPending(InvalidAssociationState):
    """The stream has an outgoing reset pending (its channel is closing): no new sends
    until ``OutgoingStreamsReset`` is reported for it."""


# --- data channels (RFC 8831, DCEP RFC 8832) ----------------------------------------


class DataChannelError(WebrtcSecureError):
    """Base class of data channel failures."""


class MalformedDcepMessage(DataChannelError):
    """A DCEP message (DATA_CHANNEL_OPEN / ACK) does not parse."""


class InvalidChannelParameters(DataChannelError, ValueError):
    """create_data_channel() got parameters no channel can have (e.g. both
    max_retransmits and max_packet_life_time, a negotiated channel without an id)."""


class ChannelIdInUse(DataChannelError):
    """The stream id is taken by another channel, or no id of our parity is free."""


class InvalidChannelState(DataChannelError):
    """The channel is not open (connecting, closing or closed): nothing was sent."""


class ChannelMessageTooLarge(DataChannelError, MessageTooLarge):
    """The message is larger than the remote's ``a=max-message-size``; nothing was queued
    (also a :class:`MessageTooLarge`, what the association itself would raise)."""
