"""The bare floor: compiles and runs bench/floor.cpp (the same graph shapes as plain arrays and
a minimal reverse sweep), for the engine-backward / floor ratio.

Needs the repository's bench/floor.cpp (not part of the wheel) and a C++ compiler; otherwise
`run` returns None with the reason, and the runner prints it.
"""
import os
import pathlib
import shutil
import subprocess
import tempfile

FLAGS = ["-O3", "-std=c++17", "-ffp-contract=off"]  # the engine's flags (CMakeLists.txt)


def source():
    """bench/floor.cpp of the source tree this package was installed from (editable) or of the
    current directory (a checkout with a wheel installed), or None."""
    here = pathlib.Path(__file__).resolve()
    for parent in [*here.parents, pathlib.Path.cwd()]:
        candidate = parent / "bench" / "floor.cpp"
        if candidate.is_file():
            return candidate
    return None


def compiler():
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def compiler_version(cxx):
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.splitlines()[0] if out.stdout else cxx
    except (OSError, subprocess.SubprocessError):
        return cxx


def parse(text):
    """{shape: {size: {'nodes', 'median', 'min', 'max'}}} from floor's output lines."""
    figures = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 7 or parts[0] != "floor":
            continue
        _, shape, size, nodes, median, low, high = parts
        figures.setdefault(shape, {})[int(size)] = {
            "nodes": int(float(nodes)), "median": float(median), "min": float(low),
            "max": float(high)}
    return figures


def run(sizes, repeats):
    """(figures, None) or (None, reason). `figures` as parse() returns it, plus 'compiler'."""
    src, cxx = source(), compiler()
    if src is None:
        return None, "floor skipped: bench/floor.cpp not found (installed from a wheel?)"
    if cxx is None:
        return None, "floor skipped: no C++ compiler (set CXX)"
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "floor")
        try:
            subprocess.run([cxx, *FLAGS, str(src), "-o", exe], check=True, capture_output=True,
                           text=True, timeout=300)
        except (OSError, subprocess.SubprocessError) as error:
            detail = getattr(error, "stderr", "") or str(error)
            return None, f"floor skipped: compiling failed: {detail.strip()[:200]}"
        out = subprocess.run([exe, "--repeats", str(repeats), *(str(int(s)) for s in sizes)],
                             check=True, capture_output=True, text=True, timeout=3600)
    figures = parse(out.stdout)
    return {"compiler": compiler_version(cxx), "flags": " ".join(FLAGS), "shapes": figures}, None
