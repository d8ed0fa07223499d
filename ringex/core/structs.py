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
import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
from numba import from_dtype, typeof
from numba.core import types
from numba.core.datamodel import default_manager, models
from numba.experimental import structref

from ringex.core.borrowed import BorrowedArray
from ringex.jit import njit
from ringex.kernel_cache import cache_folder


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
    """The compiled ``make(...)`` for one field layout, from numba's on-disk cache when a
    process has compiled it before. Compiling the five constructors took ~1.1 s of every
    engine start; numba caches only functions defined in a file, so the source goes to
    a file named after the layout (its source and the struct type it builds) in the
    kernel cache folder, which is itself keyed on the kernels' sources."""
    params, lines = [], []
    for f, kind in zip(fields, kinds):
        if kind is None:
            params.append(f"v_{f}")
            lines.append(f"    st.{f} = v_{f}")
        else:
            params.append(f"p_{f}, s_{f}")
            lines.append(f"    st.{f} = borrow(p_{f}, s_{f}, np.{kind.name})")
    src = ("import numpy as np\nfrom numba.experimental import structref\n\n"
           "from ringex.core.borrowed import borrow\n\n\n"
           f"def make({', '.join(params)}):\n    st = structref.new(ty)\n"
           + "\n".join(lines) + "\n    return st\n")
    name = "ctor_" + hashlib.blake2b(f"{src}\n{ty!r}".encode(), digest_size=10).hexdigest()
    path = Path(cache_folder()) / "constructors" / f"{name}.py"
    if not path.exists():       # never rewritten: numba's index keeps the file's mtime
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(src)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(f"ringex_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    module.ty = ty              # the global make() builds
    spec.loader.exec_module(module)
    sys.modules[spec.name] = module     # numba's cache finds the function's module by name
    return njit(cache=True)(module.make)
