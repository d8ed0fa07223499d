"""The matching core: order books, matcher, wallets, the order-service pipeline, journal
and snapshots, and the matcher process (``engine``). Kernels are numba over numpy arrays."""
