"""Serial number arithmetic (RFC 1982) for TSNs and MIDs (32 bits) and SSNs (16 bits).

SCTP numbers wrap; "a before b" means b lies less than half the number space ahead of a.
"""

from __future__ import annotations

MASK32 = 0xFFFFFFFF
HALF32 = 0x80000000
MASK16 = 0xFFFF
HALF16 = 0x8000


def add32(a: int, n: int) -> int:
    """``a + n`` modulo 2**32."""
    return (a + n) & MASK32


def diff32(a: int, b: int) -> int:
    """Signed distance ``a - b`` in 32-bit serial space (in [-2**31, 2**31))."""
    d = (a - b) & MASK32
    return d - 0x100000000 if d >= HALF32 else d


def lt32(a: int, b: int) -> bool:
    """``a`` comes strictly before ``b``."""
    return diff32(a, b) < 0


def le32(a: int, b: int) -> bool:
    return diff32(a, b) <= 0


def add16(a: int, n: int) -> int:
    return (a + n) & MASK16


def diff16(a: int, b: int) -> int:
    """Signed distance ``a - b`` in 16-bit serial space."""
    d = (a - b) & MASK16
    return d - 0x10000 if d >= HALF16 else d


def lt16(a: int, b: int) -> bool:
    return diff16(a, b) < 0
