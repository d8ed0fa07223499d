"""The matcher process: ``loop`` (numba: poll -> process -> journal -> route -> publish),
``front`` (Python: the ``Engine`` over attached rings), ``process`` (the spawned process,
its control words and lifecycle) and ``start`` (the state a new engine continues from)."""
