"""Shared output for every perf script: one JSON object per line on stdout.

    emit_latency("ring_rtt", samples_ns, unit="us", strategy="spin")
    emit_throughput("ring_batch", count, seconds, unit="records/s", batch=1024)
"""
from __future__ import annotations

import json
import os
import platform
import sys

import numpy as np


def machine() -> dict:
    """What the figures came from (put it next to them in perf/README.md)."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def emit_latency(name: str, samples_ns, unit: str = "us", **params) -> dict:
    """Percentiles of latency samples given in nanoseconds, reported in `unit` (us or ns)."""
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6}[unit]
    a = np.asarray(samples_ns, dtype=np.float64) / scale
    obj = {
        "name": name, "unit": unit, "n": int(a.size),
        "p50": round(float(np.percentile(a, 50)), 3),
        "p99": round(float(np.percentile(a, 99)), 3),
        "p999": round(float(np.percentile(a, 99.9)), 3),
        "max": round(float(a.max()), 3),
        "mean": round(float(a.mean()), 3),
        **params,
    }
    _emit(obj)
    return obj


def emit_throughput(name: str, count: int, seconds: float, unit: str, **params) -> dict:
    obj = {"name": name, "unit": unit, "count": int(count), "seconds": round(seconds, 4),
           "per_s": round(count / seconds, 1), **params}
    _emit(obj)
    return obj
