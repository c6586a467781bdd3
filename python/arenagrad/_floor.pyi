"""Type information for arenagrad's benchmark floor module (cpp/floor_module.cpp)."""

SHAPES: tuple[str, ...]
COMPILER: str

def measure(shape: str, size: int, repeats: int) -> dict[str, float]: ...
