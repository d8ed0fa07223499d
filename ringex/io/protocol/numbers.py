"""Exact decimal strings <-> engine integers, and client order id packing.

The wire carries prices, quantities and amounts as JSON strings of plain decimals
(``"123.45"``); the engine counts ticks, lots and minor units (DESIGN section 2).
Conversion is pure integer arithmetic -- no float, no ``Decimal`` context that could
round -- and a value that is not a whole number of steps is refused, never rounded.
"""
from __future__ import annotations

import re
from decimal import Decimal

MAX_DECIMAL_CHARS = 32            # longest price/qty string accepted
INT64_MAX = (1 << 63) - 1

# ASCII digits only ("\d" would accept other scripts); a sign we recognise only to
# refuse it with a clear message; digits on both sides of an optional dot.
_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?", re.ASCII)


def parse_decimal(text: object) -> tuple[int, int] | None:
    """``(mantissa, exponent)`` with value = mantissa / 10**exponent, or None.

    None means "not a plain decimal string": not a ``str``, longer than
    MAX_DECIMAL_CHARS, a leading '+', whitespace, an exponent, NaN, infinity, a bare
    dot. A leading '-' parses (so callers can say "must be positive").
    """
    if type(text) is not str or len(text) > MAX_DECIMAL_CHARS:
        return None
    m = _DECIMAL.fullmatch(text)
    if m is None:
        return None
    sign, whole, frac = m.groups()
    frac = frac or ""
    mantissa = int(whole + frac)
    return (-mantissa if sign else mantissa), len(frac)


class Step:
    """An exact decimal step (a tick, a lot, an asset's minor unit): ``units / 10**exp``."""

    __slots__ = ("units", "exp", "_formatted")
    CACHE = 4096               # formatted values kept per step (prices and sizes repeat)

    def __init__(self, step: Decimal | str | int):
        sign, digits, exponent = Decimal(step).as_tuple()
        if sign or not isinstance(exponent, int) or not any(digits):
            raise ValueError(f"a step must be a positive finite decimal, not {step!r}")
        units = int("".join(map(str, digits)))
        if exponent >= 0:
            self.units, self.exp = units * 10**exponent, 0
        else:
            self.units, self.exp = units, -exponent
        self._formatted: dict[int, str] = {}

    @classmethod
    def minor_unit(cls, scale: int) -> "Step":
        return cls(Decimal(1).scaleb(-scale))

    def count(self, mantissa: int, exponent: int) -> int | None:
        """How many steps make ``mantissa / 10**exponent``; None when not a whole number."""
        q, r = divmod(mantissa * 10**self.exp, self.units * 10**exponent)
        return None if r else q

    def format(self, n: int) -> str:
        """``n`` steps as a plain decimal string with exactly ``exp`` decimals."""
        text = self._formatted.get(n)
        if text is None:
            text = self._format(n)
            if len(self._formatted) >= self.CACHE:
                self._formatted.clear()
            self._formatted[n] = text
        return text

    def _format(self, n: int) -> str:
        v = n * self.units
        if self.exp == 0:
            return str(v)
        digits = str(abs(v)).rjust(self.exp + 1, "0")
        return f"{'-' if v < 0 else ''}{digits[:-self.exp]}.{digits[-self.exp:]}"

    def __repr__(self) -> str:
        return f"Step({self.format(1)!r})"


# ---------------------------------------------------------------- client order ids
CLIENT_ID_MAX_CHARS = 8
_CLIENT_ID = re.compile(r"[!-~]+")


def pack_client_id(text: str) -> int:
    """A wire ``client_order_id`` (1-8 chars, each 0x21-0x7E) as the positive int64 the
    engine stores: the ASCII bytes read big-endian. ValueError for anything else."""
    if type(text) is not str or not 1 <= len(text) <= CLIENT_ID_MAX_CHARS:
        raise ValueError("client_order_id must be a string of 1 to 8 characters")
    if _CLIENT_ID.fullmatch(text) is None:
        raise ValueError("client_order_id characters must be printable ASCII, no space")
    return int.from_bytes(text.encode("ascii"), "big")


def unpack_client_id(value: int) -> str | None:
    """The string :func:`pack_client_id` made ``value`` from; None for 0 (no id) or an
    integer no wire string packs to (set by another tool)."""
    if not 0 < value <= INT64_MAX:
        return None
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    if not all(0x21 <= b <= 0x7E for b in raw):
        return None
    return raw.decode("ascii")
