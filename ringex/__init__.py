"""ringex: a low-latency exchange engine."""
