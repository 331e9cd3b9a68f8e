"""Bounds-checked readers and length-prefixed writers for TLS structures.

Every read checks the remaining length, so truncated or lying input raises
MalformedPacket instead of IndexError or a short slice.
"""

from __future__ import annotations

from webrtc_secure.errors import MalformedPacket


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
        if n < 0 or n > self._end - self._pos:
            raise MalformedPacket(f"truncated: need {n} octets, have {self._end - self._pos}")
        start = self._pos
        self._pos += n
        return self._data[start : self._pos]

    def uint(self, n: int) -> int:
        return int.from_bytes(self.read(n), "big")

    def vector(self, length_octets: int, minimum: int = 0, maximum: int | None = None) -> bytes:
        """A length-prefixed opaque vector (TLS ``opaque x<min..max>``)."""
        n = self.uint(length_octets)
        if n < minimum or (maximum is not None and n > maximum):
            raise MalformedPacket(f"vector length {n} outside [{minimum}, {maximum}]")
        return self.read(n)

    def uint16_list(self, length_octets: int, minimum: int = 0) -> list[int]:
        """A vector of uint16 values (cipher suites, groups, schemes, profiles)."""
        raw = self.vector(length_octets, minimum)
        if len(raw) % 2:
            raise MalformedPacket("odd length for a list of 16-bit values")
        return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]

    def expect_end(self) -> None:
        if self._pos != self._end:
            raise MalformedPacket(f"{self._end - self._pos} trailing octets")


def vec(data: bytes, length_octets: int) -> bytes:
    """Encode ``data`` with a ``length_octets`` big-endian length prefix."""
    if len(data) >= 1 << (8 * length_octets):
        raise ValueError("vector too long for its length prefix")
    return len(data).to_bytes(length_octets, "big") + data


def u16_list(values: list[int] | tuple[int, ...], length_octets: int = 2) -> bytes:
    return vec(b"".join(v.to_bytes(2, "big") for v in values), length_octets)
