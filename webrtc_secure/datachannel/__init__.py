"""WebRTC data channels: DCEP (RFC 8832) and channels over an SCTP association (RFC 8831)."""

from webrtc_secure.datachannel.channel import (
    DEFAULT_LOCAL_MAX_MESSAGE_SIZE,
    DEFAULT_REMOTE_MAX_MESSAGE_SIZE,
    MAX_STREAM_ID,
    AssociationFace,
    ChannelManager,
    DataChannel,
    ReadyState,
)
from webrtc_secure.datachannel.dcep import (
    ChannelType,
    DataChannelAck,
    DataChannelOpen,
    Ppid,
    Priority,
    parse_dcep,
)

__all__ = [
    "DEFAULT_LOCAL_MAX_MESSAGE_SIZE",
    "DEFAULT_REMOTE_MAX_MESSAGE_SIZE",
    "MAX_STREAM_ID",
    "AssociationFace",
    "ChannelManager",
    "ChannelType",
    "DataChannel",
    "DataChannelAck",
    "DataChannelOpen",
    "Ppid",
    "Priority",
    "ReadyState",
    "parse_dcep",
]
