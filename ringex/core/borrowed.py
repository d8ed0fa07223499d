"""Borrowed arrays: numba array views of memory someone else owns, with no reference
counting at all.

A numba array carries a meminfo pointer, and every read of an array member of a struct
(``bk.o_leaves[slot]``) increfs it and decrefs it again: two calls into numba's runtime,
which LLVM cannot inline or drop because it cannot see that the pointer is null. A state
bundle (structs.py) reads dozens of members per command, and those calls were the larger
part of a cheap command's cost (``perf/matcher_kinds.py``).

``BorrowedArray`` has the same layout as a C-contiguous ``types.Array``, so every array
operation works on it unchanged, but its data model lists no members to reference-count:
numba emits no incref or decref for it. ``borrow(address, shape, dtype)`` makes one from an
integer address. Slices of a borrowed view are plain arrays with a null meminfo (safe, as
numba skips a null meminfo at run time). The owner must outlive every view: OrderService
and the engine keep the arrays alive for as long as their bundles exist.
"""
from __future__ import annotations

from numba.core import cgutils, types
from numba.core.datamodel import models, register_default
from numba.core.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


class BorrowedArray(types.Array):
    """A C-contiguous, aligned, mutable array view that owns nothing."""

    def __init__(self, dtype, ndim: int):
        super().__init__(dtype, ndim, "C")
        self.name = f"borrowed {self.name}"        # distinct in mangled kernel names

    @property
    def key(self):
        return self.dtype, self.ndim, "borrowed"

    def copy(self, dtype=None, ndim=None, layout=None, readonly=None, aligned=None):
        """What slicing and reshaping make of it: a plain array (its meminfo is null)."""
        return types.Array(self.dtype if dtype is None else dtype,
                           self.ndim if ndim is None else ndim,
                           self.layout if layout is None else layout,
                           readonly=bool(readonly),
                           aligned=True if aligned is None else aligned)


@register_default(BorrowedArray)
class BorrowedArrayModel(models.ArrayModel):
    def traverse(self, builder):
        return []              # nothing inside to incref or decref


@intrinsic
def borrow(typingctx, address, shape, dtype_ref):
    """``borrow(address, shape, np.int64)``: a BorrowedArray over ``address``; ``shape``
    an integer or a tuple of integers."""
    dtype = dtype_ref.instance_type
    dims_ty = shape.types if isinstance(shape, types.BaseTuple) else (shape,)
    arrty = BorrowedArray(dtype, len(dims_ty))

    def codegen(context, builder, sig, args):
        addr, shp = args[0], args[1]
        dims = cgutils.unpack_tuple(builder, shp) if isinstance(sig.args[1], types.BaseTuple) \
            else [shp]
        dims = [context.cast(builder, d, t, types.intp) for d, t in zip(dims, dims_ty)]
        itemsize = context.get_constant(
            types.intp, context.get_abi_sizeof(context.get_data_type(dtype)))
        strides, acc = [], itemsize
        for d in reversed(dims):               # C order
            strides.insert(0, acc)
            acc = builder.mul(acc, d)
        ary = make_array(arrty)(context, builder)
        data = builder.inttoptr(addr, context.get_value_type(types.CPointer(dtype)))
        populate_array(ary, data=data, shape=cgutils.pack_array(builder, dims),
                       strides=cgutils.pack_array(builder, strides), itemsize=itemsize,
                       meminfo=None)
        return ary._getvalue()

    return arrty(address, shape, dtype_ref), codegen


@intrinsic
def as_borrowed(typingctx, arr):
    """The same C-contiguous array, typed as a BorrowedArray: passed on to other kernels
    without reference counting. The caller holds the array for as long as the view is
    used (a kernel's own argument is held by its caller)."""
    if not isinstance(arr, types.Array) or arr.layout != "C":
        return None

    def codegen(context, builder, sig, args):
        return args[0]                          # the same struct, another type

    return BorrowedArray(arr.dtype, arr.ndim)(arr), codegen
