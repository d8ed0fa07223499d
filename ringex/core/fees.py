"""The fee definitions of ``ringex.fees``, compiled for the kernels (same functions)."""
from __future__ import annotations

from ringex import fees as _defs
from ringex.jit import njit

fee = njit(cache=True)(_defs.fee)
notional = njit(cache=True)(_defs.notional)
