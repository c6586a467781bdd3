"""The README's section "Adding an operation" runs as written, and gives the reference's numbers
when its import line points at arenagrad.reference."""
import math
import pathlib
import re

import pytest

from conftest import assert_close, assert_same

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
IMPORT = "from arenagrad.engine import Value"


def section_code():
    if not README.exists():
        pytest.skip("README.md is not next to the tests (installed-package run)")
    text = README.read_text(encoding="utf-8")
    section = text.split("## Adding an operation", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```python\n(.*?)```", section, flags=re.S))


def run(code):
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    Value = namespace["Value"]
    del Value.sin, Value.hypot  # leave the class as other tests expect it
    return namespace


def test_readme_section_runs_and_matches_reference():
    code = section_code()
    assert IMPORT in code and "Value.sin = sin" in code
    ours = run(code)
    theirs = run(code.replace(IMPORT, "from arenagrad.reference.engine import Value"))
    assert_same(ours["L"].data, theirs["L"].data)
    assert_close(ours["a"].grad, theirs["a"].grad)
    assert_close(ours["b"].grad, theirs["b"].grad)
    assert ours["s"]._op == "sin" and ours["L"].grad == 1.0
    # the numbers are the chain rule's, not just the same on both engines
    a, b = 3.0, -4.0
    s = math.sin(a * b)
    h = math.hypot(s, a)
    ds = (s / h) * s + h  # d(h * s)/ds through both of s's consumers
    want_a = ds * math.cos(a * b) * b + (a / h) * s
    assert_close(ours["a"].grad, want_a, rel=1e-12)
