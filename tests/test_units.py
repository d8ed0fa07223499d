"""ringex.units: exact decimals <-> whole steps, the one conversion every edge uses."""
from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from ringex.errors import ConfigError, InexactAmount
from ringex.units import Step, plain


def test_should_count_whole_steps_of_any_decimal_spelling():
    tick = Step("0.01")
    assert tick.exact("101.25") == 10125
    assert tick.exact(Decimal("1.01E+2")) == 10100
    assert tick.exact(7) == 700
    assert tick.exact("-0.05") == -5             # the sign is the caller's to check
    assert Step("1000").exact("5E+3") == 5


@pytest.mark.parametrize("value", ["1.001", "abc", "NaN", "Infinity", "", "1e-3", 1.5, True])
def test_should_refuse_what_is_not_whole_steps(value):
    with pytest.raises(InexactAmount):
        Step("0.01").exact(value, "price")


def test_should_say_whole_multiple_for_a_step_and_finer_for_a_minor_unit():
    with pytest.raises(InexactAmount, match="price is not a whole multiple of 0.01"):
        Step("0.01").exact("1.001", "price")
    with pytest.raises(InexactAmount, match="is finer than its minor unit 0.00000001"):
        Step.minor_unit(8).exact("0.000000001", "0.000000001 BTC")
    assert issubclass(InexactAmount, ConfigError)


def test_should_format_exactly_with_the_steps_decimals_never_an_exponent():
    satoshi = Step.minor_unit(8)
    assert satoshi.format(1) == "0.00000001"
    assert satoshi.format(150_000_000) == "1.50000000"
    assert satoshi.format(-1) == "-0.00000001"
    assert Step("0.50").format(3) == "1.50"
    assert Step(5).format(3) == "15"


def test_plain_never_writes_an_exponent():
    assert plain(Decimal("1E-7")) == "0.0000001"
    assert plain(Decimal("1E+3")) == "1000"
    assert plain(Decimal("30000.10")) == "30000.10"
    assert plain(12) == "12"
    assert plain("0.5") == "0.5"
    with pytest.raises(TypeError):
        plain(0.1)                                 # a float is never exact


@given(st.integers(-10**12, 10**12), st.integers(0, 12))
def test_format_and_exact_are_inverse(n, scale):
    step = Step.minor_unit(scale)
    assert step.exact(step.format(n)) == n


def _heavy_after_importing(*modules: str) -> set[str]:
    """Which of numba and numpy a fresh interpreter holds after importing ``modules``."""
    code = (f"import sys, {', '.join(modules)}; "
            "print(' '.join(sorted({'numba', 'numpy'} & set(sys.modules))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(out.split())


def test_the_client_loads_neither_numpy_nor_numba():
    assert _heavy_after_importing("ringex.client", "ringex.units") == set()


def test_the_protocol_never_loads_numba():
    assert "numba" not in _heavy_after_importing(
        "ringex.protocol.session", "ringex.protocol.feed", "ringex.protocol.booksync")
