"""Captioning throughput: one pair per generate call (the reference's way) vs our batched path, side by side.

Same as ``ccexpert bench``; see ``ccexpert bench --help``. Examples:

    .venv/bin/python bench/bench_generate.py --preset tiny                 # CPU
    .venv/bin/python bench/bench_generate.py --preset 0.5b --pairs 256 --batch-size 64   # GPU
"""

from __future__ import annotations

import argparse
import sys

from ccexpert.commands import bench

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=bench.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_arguments(parser)
    sys.exit(bench.run(parser.parse_args()))
