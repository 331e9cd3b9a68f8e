"""An IntEnum that prints as its name: protocol ids (cipher suites, SRTP profiles) that
users read in logs, events and CLI output, while arithmetic and numeric formats still
see the wire value."""

from __future__ import annotations

from enum import IntEnum

#: format() type characters that ask for the number rather than the name
_NUMERIC_FORMATS = frozenset("bcdoxXneEfFgG%")


class NamedIntEnum(IntEnum):
    """``str()`` and ``f"{x}"`` give the name; ``int()``, ``%d`` and ``f"{x:04x}"`` the id.

    A plain IntEnum prints as its number ("49195"), which tells a reader nothing.
    """

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        if spec and spec[-1] in _NUMERIC_FORMATS:
            return int.__format__(self, spec)
        return format(self.name, spec)
