"""The bare floor: the benchmark's graph shapes as plain arrays and a minimal reverse sweep
(cpp/floor.cpp), built into the package as arenagrad._floor, for the engine-backward / floor
ratio. It ships in the wheel, so it runs wherever the engine does: no compiler, no source tree.
"""
from .. import _floor

COMPILER = _floor.COMPILER  # the compiler of _floor, and of _core (one CMake build)
FLAGS = "the engine's flags (CMake Release: -O3 with gcc and clang, -ffp-contract=off)"


def run(sizes, repeats):
    """{'compiler', 'flags', 'shapes': {shape: {size: {'nodes', 'median', 'min', 'max'}}}}."""
    shapes = {shape: {int(size): _floor.measure(shape, int(size), repeats) for size in sizes}
              for shape in _floor.SHAPES}
    return {"compiler": COMPILER, "flags": FLAGS, "shapes": shapes}
