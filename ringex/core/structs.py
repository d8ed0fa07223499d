"""Bundles of state arrays handed to kernels as one numba StructRef of borrowed arrays.

Three costs are avoided here. A namedtuple of ~35 arrays crossing a numba call boundary
increfs every member; a StructRef is one reference. And every read of an array member
of a StructRef increfs and decrefs that array's meminfo (two calls into numba's runtime)
unless its type has none to count: so the struct holds ``BorrowedArray`` views
(borrowed.py) of the arrays' memory. The Python side keeps the owning namedtuple alive
for as long as the bundle is used (OrderService holds both), so the views never outlive
their memory. Nor is the bundle itself reference-counted inside kernels
(UncountedStructRefModel): its Python proxy keeps it alive.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import from_dtype, typeof
from numba.core import types
from numba.core.datamodel import default_manager, models
from numba.experimental import structref

from ringex.core.borrowed import BorrowedArray, borrow
from ringex.jit import njit


class StateType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class UncountedStructRefModel(models.StructRefModel):
    """A StructRef handle that kernels never incref or decref: the Python proxy holds
    the one reference, for as long as the bundle is in use (as for borrowed arrays).
    Without this, every kernel taking a bundle counted it in and out with atomic
    operations on entry and at each of its exits."""

    def traverse(self, builder):
        return []


default_manager.register(StateType, UncountedStructRefModel)
structref.define_attributes(StateType)


class State(structref.StructRefProxy):
    """Opaque handle for kernels; Python code reads the arrays through the namedtuple."""


structref.define_boxing(StateType, State)


_BORROWABLE = (np.dtype(np.int8), np.dtype(np.int32), np.dtype(np.int64))


def _borrowable(a) -> bool:
    return isinstance(a, np.ndarray) and a.flags.c_contiguous and a.dtype in _BORROWABLE


def bundle(arrays) -> State:
    """A StructRef with the namedtuple's fields.

    C-contiguous int8/int32/int64 arrays become borrowed views (the caller keeps the
    namedtuple alive); any other member (structured arrays, tuples of arrays, scalars)
    is stored as is, with numba's usual reference counting.
    """
    lend = [_borrowable(a) for a in arrays]
    ty = StateType([(f, BorrowedArray(from_dtype(a.dtype), a.ndim) if b else typeof(a))
                    for f, a, b in zip(arrays._fields, arrays, lend)])
    args, kinds = [], []
    for a, b in zip(arrays, lend):
        if b:
            args += [a.ctypes.data, a.shape]
            kinds.append(a.dtype)
        else:
            args.append(a)
            kinds.append(None)
    return _constructor(ty, tuple(arrays._fields), tuple(kinds))(*args)


@functools.cache
def _constructor(ty, fields, kinds):
    params, lines, ns = [], [], {"structref": structref, "ty": ty, "borrow": borrow}
    for i, (f, kind) in enumerate(zip(fields, kinds)):
        if kind is None:
            params.append(f"v_{f}")
            lines.append(f"    st.{f} = v_{f}")
        else:
            params.append(f"p_{f}, s_{f}")
            lines.append(f"    st.{f} = borrow(p_{f}, s_{f}, dt_{i})")
            ns[f"dt_{i}"] = kind.type
    body = "\n".join(lines)
    src = f"def make({', '.join(params)}):\n    st = structref.new(ty)\n{body}\n    return st\n"
    exec(src, ns)  # one constructor per field layout, built once per process
    return njit(ns["make"])
