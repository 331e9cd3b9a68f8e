"""The stateless State Cookie (RFC 9260 5.1.3).

A listening association answers an INIT with an INIT-ACK whose cookie carries
everything it needs to create the association later, so it keeps no state for an
INIT (an INIT flood costs nothing but the answers). The cookie is authenticated with
HMAC-SHA256 under a secret of the association, and carries its creation time so a
COOKIE-ECHO can be refused once ``cookie_lifetime`` has passed. Only the MAC makes a
cookie valid: a forged or altered cookie never creates state.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

COOKIE_VERSION = 1
# version, flags, local tag, peer tag, local initial TSN, peer initial TSN, peer a_rwnd,
# outbound streams, inbound streams, local tie tag, peer tie tag, creation time (us)
_BODY = struct.Struct("!BBIIIIIHHIIq")
MAC_SIZE = 32
COOKIE_SIZE = _BODY.size + MAC_SIZE

# Flags: what the peer's INIT offered (we always offer what our config allows).
FLAG_FORWARD_TSN = 0x01
FLAG_RECONFIG = 0x02
FLAG_INTERLEAVING = 0x04
FLAG_ZERO_CHECKSUM = 0x08


@dataclass(frozen=True, slots=True)
class CookieState:
    """The association parameters an INIT-ACK committed to."""

    local_tag: int
    peer_tag: int
    local_initial_tsn: int
    peer_initial_tsn: int
    peer_a_rwnd: int
    outbound_streams: int
    inbound_streams: int
    flags: int
    created_at: float
    local_tie_tag: int = 0
    peer_tie_tag: int = 0


def seal_cookie(state: CookieState, secret: bytes) -> bytes:
    """The cookie bytes for ``state``: its fields then their HMAC-SHA256."""
    body = _BODY.pack(
        COOKIE_VERSION,
        state.flags,
        state.local_tag,
        state.peer_tag,
        state.local_initial_tsn,
        state.peer_initial_tsn,
        state.peer_a_rwnd,
        state.outbound_streams,
        state.inbound_streams,
        state.local_tie_tag,
        state.peer_tie_tag,
        round(state.created_at * 1_000_000),
    )
    return body + hmac.digest(secret, body, hashlib.sha256)


def open_cookie(cookie: bytes, secret: bytes) -> CookieState | None:
    """The state in ``cookie`` if its MAC verifies under ``secret``, else None."""
    if len(cookie) != COOKIE_SIZE:
        return None
    body, mac = cookie[: _BODY.size], cookie[_BODY.size :]
    if not hmac.compare_digest(mac, hmac.digest(secret, body, hashlib.sha256)):
        return None
    (
        version,
        flags,
        local_tag,
        peer_tag,
        local_tsn,
        peer_tsn,
        a_rwnd,
        outbound,
        inbound,
        local_tie,
        peer_tie,
        created_us,
    ) = _BODY.unpack(body)
    if version != COOKIE_VERSION:
        return None
    return CookieState(
        local_tag,
        peer_tag,
        local_tsn,
        peer_tsn,
        a_rwnd,
        outbound,
        inbound,
        flags,
        created_us / 1_000_000,
        local_tie,
        peer_tie,
    )
