"""Bundles of state arrays handed to kernels as one numba StructRef of borrowed arrays.

Two costs are avoided here. A namedtuple of ~35 arrays crossing a numba call boundary
increfs every member; a StructRef is one reference. And every read of an array member
of a StructRef increfs and decrefs that array's meminfo (an atomic add each) unless the
array has none: so the struct holds *borrowed* views, made with ``numba.carray`` from
the arrays' data pointers, which carry no meminfo. The Python side keeps the owning
namedtuple alive for as long as the bundle is used (OrderService holds both), so the
views never outlive their memory.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import carray, typeof
from numba.core import types
from numba.core.extending import intrinsic
from numba.experimental import structref

from ringex.jit import njit


@structref.register
class StateType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class State(structref.StructRefProxy):
    """Opaque handle for kernels; Python code reads the arrays through the namedtuple."""


structref.define_boxing(StateType, State)



def _pointer_intrinsic(item):
    """An intrinsic turning an integer address into a typed pointer (for numba.carray)."""
    @intrinsic
    def as_pointer(typingctx, address):
        ptr = types.CPointer(item)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(ptr))
        return ptr(types.intp), codegen
    return as_pointer


_POINTERS = {np.dtype(np.int8): _pointer_intrinsic(types.int8),
             np.dtype(np.int32): _pointer_intrinsic(types.int32),
             np.dtype(np.int64): _pointer_intrinsic(types.int64)}


def _borrowable(a) -> bool:
    return isinstance(a, np.ndarray) and a.flags.c_contiguous and a.dtype in _POINTERS


def bundle(arrays) -> State:
    """A StructRef with the namedtuple's fields.

    C-contiguous int8/int32/int64 arrays become borrowed views (the caller keeps the
    namedtuple alive); any other member (structured arrays, tuples of arrays, scalars)
    is stored as is, with numba's usual reference counting.
    """
    ty = StateType([(f, typeof(a)) for f, a in zip(arrays._fields, arrays)])
    args, kinds = [], []
    for a in arrays:
        if _borrowable(a):
            args += [a.ctypes.data, a.shape]
            kinds.append(a.dtype)
        else:
            args.append(a)
            kinds.append(None)
    return _constructor(ty, tuple(arrays._fields), tuple(kinds))(*args)


@functools.cache
def _constructor(ty, fields, kinds):
    params, lines, ns = [], [], {"structref": structref, "ty": ty, "carray": carray}
    for i, (f, kind) in enumerate(zip(fields, kinds)):
        if kind is None:
            params.append(f"v_{f}")
            lines.append(f"    st.{f} = v_{f}")
        else:
            params.append(f"p_{f}, s_{f}")
            lines.append(f"    st.{f} = carray(ptr_{i}(p_{f}), s_{f})")
            ns[f"ptr_{i}"] = _POINTERS[kind]
    body = "\n".join(lines)
    src = f"def make({', '.join(params)}):\n    st = structref.new(ty)\n{body}\n    return st\n"
    exec(src, ns)  # one constructor per field layout, built once per process
    return njit(ns["make"])
