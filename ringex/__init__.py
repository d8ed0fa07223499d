"""ringex: a low-latency exchange engine."""
from ringex._jit_cache import use_source_keyed_cache

use_source_keyed_cache()
