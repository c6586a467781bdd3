"""``python -m arenagrad``: see ``arenagrad.cli``."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
