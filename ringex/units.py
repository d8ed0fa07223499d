"""Exact decimals <-> whole numbers of a step: the one place ringex converts between what
people write (``"101.25"``) and what the engine counts (ticks, lots, minor units).

    step = Step("0.01")                    # a tick, a lot, an asset's minor unit
    step.exact("101.25")       -> 10125    # InexactAmount when it is not whole steps
    step.count(*parse_decimal("101.25"))   # the wire's hot path: None when not whole
    step.format(10125)         -> "101.25" # exactly step.exp decimals, never an exponent
    plain(Decimal("1E-7"))     -> "0.0000001"

Pure integer arithmetic -- no float, no ``Decimal`` context that could round -- and a value
that is not a whole number of steps is refused, never rounded. Importable without numpy.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from ringex.errors import InexactAmount

MAX_DECIMAL_CHARS = 32            # longest price/qty string the wire accepts

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


def plain(value: str | int | Decimal) -> str:
    """A number as plain decimal text: ``Decimal("1E-7")`` -> ``"0.0000001"`` (``str`` of a
    Decimal may use an exponent, which the wire refuses). Strings pass through as they are."""
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a str, int or Decimal, not {type(value).__name__}")


class Step:
    """An exact decimal step (a tick, a lot, an asset's minor unit): ``units / 10**exp``."""

    __slots__ = ("units", "exp", "minor", "_formatted")
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
        self.minor = False          # an asset's minor unit (says so in errors)
        self._formatted: dict[int, str] = {}

    @classmethod
    def minor_unit(cls, scale: int) -> Step:
        step = cls(Decimal(1).scaleb(-scale))
        step.minor = True
        return step

    def count(self, mantissa: int, exponent: int) -> int | None:
        """How many steps make ``mantissa / 10**exponent``; None when not a whole number."""
        q, r = divmod(mantissa * 10**self.exp, self.units * 10**exponent)
        return None if r else q

    def exact(self, value: str | int | Decimal, what: str = "value") -> int:
        """``value`` (any decimal text ``Decimal`` reads, an int, a Decimal) as a whole
        number of steps; InexactAmount (naming ``what``) when it is not a finite decimal or
        not a whole multiple of the step. The sign is kept: callers check it."""
        try:
            d = Decimal(value) if not isinstance(value, (bool, float)) else None
        except (InvalidOperation, TypeError, ValueError):
            d = None
        if d is None or not d.is_finite():
            raise InexactAmount(f"{what} {value!r} is not a decimal number")
        sign, digits, exponent = d.as_tuple()
        assert isinstance(exponent, int)
        mantissa = int("".join(map(str, digits))) * (-1 if sign else 1)
        if exponent > 0:                      # "5E+3": a whole number
            mantissa, exponent = mantissa * 10**exponent, 0
        n = self.count(mantissa, -exponent)
        if n is None and self.minor:
            raise InexactAmount(f"{what} is finer than its minor unit {self.format(1)}")
        if n is None:
            raise InexactAmount(f"{what} is not a whole multiple of {self.format(1)}")
        return n

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
