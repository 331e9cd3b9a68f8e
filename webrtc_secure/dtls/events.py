"""Events a DtlsConnection hands to its owner through ``next_event()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from webrtc_secure.errors import WebrtcSecureError


@dataclass(frozen=True)
class HandshakeComplete:
    """The handshake finished; keys, suite, SRTP profile and peer certificate are known."""

    cipher_suite: int
    srtp_profile: int | None
    peer_certificate: bytes


class ApplicationData(NamedTuple):
    """One authenticated application_data record's plaintext.

    A NamedTuple rather than a frozen dataclass like the other events: there is one
    per record received, and building it is then a third of the cost."""

    data: bytes


@dataclass(frozen=True)
class ConnectionClosed:
    """The connection ended: ``error`` is None for a clean close_notify."""

    error: WebrtcSecureError | None
    by_peer: bool


Event = HandshakeComplete | ApplicationData | ConnectionClosed
