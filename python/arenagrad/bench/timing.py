"""Timing helpers and the machine description shared by every workload.

Method (google/benchmark's, in miniature): setup outside the timed region, one warm-up, then
`repeats` timed samples with the garbage collector off; report the median with min and max.
"""
import gc
import os
import platform
import statistics
import sys
import sysconfig
import time

import numpy as np


def stats(samples):
    """Median, min and max of a list of numbers, as the JSON stores every figure."""
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "samples": list(samples)}


def scale(figure, factor):
    """A stats() dict with every number multiplied by `factor` (e.g. ns -> ns/node)."""
    return {"median": figure["median"] * factor, "min": figure["min"] * factor,
            "max": figure["max"] * factor, "samples": [s * factor for s in figure["samples"]]}


class Timer:
    """`with Timer() as t: ...` times a region with the collector disabled; `t.ns` after."""

    def __enter__(self):
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._start = time.perf_counter_ns()
        return self

    def __exit__(self, *exc):
        self.ns = time.perf_counter_ns() - self._start
        if self._was_enabled:
            gc.enable()
        return False


def time_call(fn, number=1):
    """ns for `number` back-to-back calls of fn(), collector off."""
    with Timer() as t:
        for _ in range(number):
            fn()
    return t.ns


def measure(fn, repeats, number=1, warmup=1):
    """stats() of the ns per call of fn(): `warmup` untimed samples, then `repeats` samples of
    `number` calls each."""
    for _ in range(warmup):
        time_call(fn, number)
    return stats([time_call(fn, number) / number for _ in range(repeats)])


def collect():
    """Full collection outside the timed regions: the reference's Values form reference cycles
    (each `_backward` closure holds its `out`), so its graphs die only here."""
    gc.collect()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    """What the figures were measured on."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0] + " (" + platform.python_implementation() + ")",
        "numpy": np.__version__,
        "compiler": sysconfig.get_config_var("CC") or "unknown",
        "python_compiler": platform.python_compiler(),
    }
