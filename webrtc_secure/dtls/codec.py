"""Bounds-checked readers and length-prefixed writers for TLS structures.

Every read checks the remaining length, so truncated or lying input raises
MalformedPacket instead of IndexError or a short slice. Each method does its own
bounds check and slice (no method calling another): handshake parsing calls these a
few dozen times per message.
"""

from __future__ import annotations

import struct

from webrtc_secure.errors import MalformedPacket

_U16 = struct.Struct("!H")


def _truncated(need: int, have: int) -> MalformedPacket:
    return MalformedPacket(f"truncated: need {need} octets, have {have}")


class Reader:
    """Cursor over a bytes object; every read is bounds checked."""

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._end = len(data)

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def read(self, n: int) -> bytes:
        start = self._pos
        stop = start + n
        if n < 0 or stop > self._end:
            raise _truncated(n, self._end - start)
        self._pos = stop
        return self._data[start:stop]

    def u8(self) -> int:
        """One octet as an integer."""
        pos = self._pos
        if pos >= self._end:
            raise _truncated(1, 0)
        self._pos = pos + 1
        return self._data[pos]

    def u16(self) -> int:
        """A big-endian 16-bit integer."""
        pos = self._pos
        if pos + 2 > self._end:
            raise _truncated(2, self._end - pos)
        self._pos = pos + 2
        return _U16.unpack_from(self._data, pos)[0]  # type: ignore[no-any-return]

    def uint(self, n: int) -> int:
        start = self._pos
        stop = start + n
        if n < 0 or stop > self._end:
            raise _truncated(n, self._end - start)
        self._pos = stop
        return int.from_bytes(self._data[start:stop], "big")

    def vector(self, length_octets: int, minimum: int = 0, maximum: int | None = None) -> bytes:
        """A length-prefixed opaque vector (TLS ``opaque x<min..max>``)."""
        data = self._data
        start = self._pos + length_octets
        if start > self._end:
            raise _truncated(length_octets, self._end - self._pos)
        if length_octets == 1:
            n = data[start - 1]
        elif length_octets == 2:
            n = _U16.unpack_from(data, start - 2)[0]
        else:
            n = int.from_bytes(data[self._pos : start], "big")
        if n < minimum or (maximum is not None and n > maximum):
            raise MalformedPacket(f"vector length {n} outside [{minimum}, {maximum}]")
        stop = start + n
        if stop > self._end:
            self._pos = start
            raise _truncated(n, self._end - start)
        self._pos = stop
        return data[start:stop]

    def uint16_list(self, length_octets: int, minimum: int = 0) -> list[int]:
        """A vector of uint16 values (cipher suites, groups, schemes, profiles)."""
        raw = self.vector(length_octets, minimum)
        return u16_values(raw)

    def expect_end(self) -> None:
        if self._pos != self._end:
            raise MalformedPacket(f"{self._end - self._pos} trailing octets")


_U16_ARRAYS: dict[int, struct.Struct] = {}


def u16_values(raw: bytes) -> list[int]:
    """The uint16 values of an even-length octet string."""
    n = len(raw)
    if n % 2:
        raise MalformedPacket("odd length for a list of 16-bit values")
    unpacker = _U16_ARRAYS.get(n)
    if unpacker is None:
        unpacker = struct.Struct(f"!{n // 2}H")
        if len(_U16_ARRAYS) < 64:  # the usual list sizes, not every size a peer sends
            _U16_ARRAYS[n] = unpacker
    return list(unpacker.unpack(raw))


def vec(data: bytes, length_octets: int) -> bytes:
    """Encode ``data`` with a ``length_octets`` big-endian length prefix."""
    if len(data) >= 1 << (8 * length_octets):
        raise ValueError("vector too long for its length prefix")
    return len(data).to_bytes(length_octets, "big") + data


def u16_list(values: list[int] | tuple[int, ...], length_octets: int = 2) -> bytes:
    return vec(struct.pack(f"!{len(values)}H", *values), length_octets)
