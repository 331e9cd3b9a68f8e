"""Events a DtlsConnection hands to its owner through ``next_event()``."""

from __future__ import annotations

from dataclasses import dataclass

from webrtc_secure.errors import WebrtcSecureError


@dataclass(frozen=True)
class HandshakeComplete:
    """The handshake finished; keys, suite, SRTP profile and peer certificate are known."""

    cipher_suite: int
    srtp_profile: int | None
    peer_certificate: bytes


@dataclass(frozen=True)
class ApplicationData:
    """One authenticated application_data record's plaintext."""

    data: bytes


@dataclass(frozen=True)
class ConnectionClosed:
    """The connection ended: ``error`` is None for a clean close_notify."""

    error: WebrtcSecureError | None
    by_peer: bool


Event = HandshakeComplete | ApplicationData | ConnectionClosed
