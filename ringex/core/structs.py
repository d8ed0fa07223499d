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
from numba import carray, njit, typeof
from numba.core import types
from numba.core.extending import intrinsic
from numba.experimental import structref


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


def bundle(arrays) -> State:
    """A StructRef with the namedtuple's fields, viewing (not owning) its arrays."""
    for name, a in zip(arrays._fields, arrays):
        if not (isinstance(a, np.ndarray) and a.flags.c_contiguous and a.dtype in _POINTERS):
            raise TypeError(f"{name}: needs a C-contiguous int8/int32/int64 array")
    ty = StateType([(f, typeof(a)) for f, a in zip(arrays._fields, arrays)])
    args = []
    for a in arrays:
        args += [a.ctypes.data, a.shape]
    dtypes = tuple(a.dtype for a in arrays)
    return _constructor(ty, tuple(arrays._fields), dtypes)(*args)


@functools.cache
def _constructor(ty, fields, dtypes):
    params = ", ".join(f"p_{f}, s_{f}" for f in fields)
    body = "\n".join(f"    st.{f} = carray(ptr_{i}(p_{f}), s_{f})" for i, f in enumerate(fields))
    src = f"def make({params}):\n    st = structref.new(ty)\n{body}\n    return st\n"
    ns = {"structref": structref, "ty": ty, "carray": carray}
    ns.update({f"ptr_{i}": _POINTERS[d] for i, d in enumerate(dtypes)})
    exec(src, ns)  # one constructor per field layout, built once per process
    return njit(ns["make"])
