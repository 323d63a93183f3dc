"""Print the engine benchmark table (the same code as ``seem-ros bench``; same flags).

python benchmarks/bench_engines.py --json docs/bench.json
"""

from __future__ import annotations

import sys

from seem_ros.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
