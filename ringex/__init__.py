"""ringex: a low-latency exchange engine.

Importing ringex (or ``ringex.client``, ``ringex.protocol``) loads no numba: modules with
kernels set up numba's compile cache through ``ringex.jit``.
"""
