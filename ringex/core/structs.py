"""Bundles of state arrays handed to kernels as one numba StructRef.

A namedtuple of arrays works too, but numba increfs every member array each time such
a tuple crosses a call boundary (about 35 atomic operations per call for the book):
hundreds of nanoseconds per command. A StructRef is one reference, whatever it holds.
Python keeps the namedtuple (for views and snapshots); kernels get ``bundle(arrays)``,
which shares the same arrays, so a write on either side is seen by the other.
"""
from __future__ import annotations

import functools

from numba import njit, typeof
from numba.core import types
from numba.experimental import structref


@structref.register
class StateType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class State(structref.StructRefProxy):
    """Opaque handle for kernels; Python code reads the arrays through the namedtuple."""


structref.define_boxing(StateType, State)


def bundle(arrays) -> State:
    """A StructRef with the namedtuple's fields, sharing its arrays."""
    ty = StateType([(f, typeof(a)) for f, a in zip(arrays._fields, arrays)])
    return _constructor(ty, tuple(arrays._fields))(*arrays)


@functools.cache
def _constructor(ty, fields):
    args = ", ".join(fields)
    body = "\n".join(f"    st.{f} = {f}" for f in fields)
    src = f"def make({args}):\n    st = structref.new(ty)\n{body}\n    return st\n"
    ns = {"structref": structref, "ty": ty}
    exec(src, ns)  # one constructor per field layout, built once
    return njit(ns["make"])
