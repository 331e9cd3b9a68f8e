"""SrtpSession: both directions of a DTLS-SRTP association (RFC 5764 4.2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webrtc_secure.srtp.context import SrtpContext
from webrtc_secure.srtp.profiles import Profile


class SrtpSession:
    """A local context for what we send and a remote one for what the peer sends.

    ``protect`` and ``protect_rtcp`` are the local context's methods and ``unprotect``
    and ``unprotect_rtcp`` the remote one's, bound once here rather than wrapped, so a
    packet costs one Python call, not two. They raise what the context methods raise.
    """

    protect: Callable[[bytes], bytes]
    protect_rtcp: Callable[[bytes], bytes]
    unprotect: Callable[[bytes], bytes]
    unprotect_rtcp: Callable[[bytes], bytes]

    def __init__(self, local: SrtpContext, remote: SrtpContext) -> None:
        self.local = local
        self.remote = remote
        self.profile = local.profile
        #: octets protect() adds to an RTP packet (the authentication tag)
        self.rtp_overhead = local.profile.srtp_tag_length
        self.protect = local.protect
        self.protect_rtcp = local.protect_rtcp
        self.unprotect = remote.unprotect
        self.unprotect_rtcp = remote.unprotect_rtcp

    @classmethod
    def from_keying_material(
        cls, material: bytes, profile: Profile, is_client: bool, **options: Any
    ) -> SrtpSession:
        """Split exporter output: client key | server key | client salt | server salt."""
        profile = Profile(profile)
        k, s = profile.key_length, profile.salt_length
        if len(material) != 2 * (k + s):
            raise ValueError(
                f"{profile.name} needs {2 * (k + s)} octets of keying material, got {len(material)}"
            )
        client_key, server_key = material[:k], material[k : 2 * k]
        client_salt, server_salt = material[2 * k : 2 * k + s], material[2 * k + s :]
        client = SrtpContext(profile, client_key, client_salt, **options)
        server = SrtpContext(profile, server_key, server_salt, **options)
        return cls(client, server) if is_client else cls(server, client)
