"""Memory exhaustion in the Value type is a MemoryError, never an abort, and the engine stays
usable (issue 9). Each case runs in a subprocess under resource.setrlimit(RLIMIT_AS)."""
import os
import subprocess
import sys
import textwrap

import pytest

resource = pytest.importorskip("resource")

PRELUDE = """
import gc, resource
from arenagrad.engine import Value

def vm_size():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize"):
                return int(line.split()[1]) * 1024

def cap(extra):
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    resource.setrlimit(resource.RLIMIT_AS, (vm_size() + extra, hard))
"""

CASES = {
    "label setter": "big = 'x' * (300 << 20); a = Value(1.0); cap(150 << 20); a.label = big",
    "constructor label": "big = 'x' * (300 << 20); cap(150 << 20); Value(1.0, label=big)",
    "constructor op": "big = 'x' * (300 << 20); cap(150 << 20); Value(1.0, (), big)",
    "setstate": "big = 'x' * (300 << 20); v = Value(0.0); cap(150 << 20); "
                "v.__setstate__((0.0, big))",
    "children": "a = Value(1.0); kids = [a] * (60 << 20); cap(100 << 20); Value(0.0, kids)",
}


def run(body):
    code = PRELUDE + textwrap.dedent(f"""
        try:
            {body}
        except MemoryError:
            print("MemoryError")
        else:
            print("no error")
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
        x = Value(2.0)
        (x * x).backward()
        print(x.grad)
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.skipif(os.environ.get("ARENAGRAD_SANITIZED") == "1",
                    reason="AddressSanitizer reserves far more address space than RLIMIT_AS allows")
@pytest.mark.parametrize("case", list(CASES))
def test_allocation_failure_is_memory_error(case):
    result = run(CASES[case])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["MemoryError", "4.0"]
