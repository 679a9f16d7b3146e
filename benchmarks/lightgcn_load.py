"""Time and memory of loading the LightGCN-format benchmarks (chapter 1); run by hand, not in CI.

For each split named (default: yelp2018 gowalla), in this process: `read_lightgcn_file` of train.txt alone,
`carve_valid` alone, the whole `load_benchmark_split` (SHA-256 checks, both files, carving, counts), and
`encode` of the result. Times are the best of `--repeats` runs (the files are in the page cache after the
first). Memory is measured on one more run under `tracemalloc` (which sees NumPy's and pandas' buffers):
the peak allocated during the step above what was allocated before it, and what its result still holds.

    source tools/env.sh && nice .venv/bin/python benchmarks/lightgcn_load.py [yelp2018 gowalla] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
from pathlib import Path

from contrastrec.data import carve_valid, encode, load_benchmark_split, read_lightgcn_file


def measure(label: str, step, repeats: int):
    "Print the best time of `repeats` runs of `step`, then its traced memory on one more run; return its result."
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    result = step()
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  {label:<36} {best:5.2f} s   peak {peak / 2**20:5.0f} MiB, result {held / 2**20:4.0f} MiB")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=["yelp2018", "gowalla"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, CONTRASTREC_DATA="
          f"{os.environ.get('CONTRASTREC_DATA')}")
    for name in args.names:
        folder = Path(os.environ["CONTRASTREC_DATA"]) / name
        print(name)
        train = measure("read_lightgcn_file(train.txt)", lambda: read_lightgcn_file(folder / "train.txt"),
                        args.repeats)
        measure("carve_valid(train)", lambda: carve_valid(train), args.repeats)
        split = measure(f"load_benchmark_split({name!r})", lambda: load_benchmark_split(name), args.repeats)
        print(f"  counts {split.counts()}")
        measure("encode(split)", lambda: encode(split), args.repeats)


if __name__ == "__main__":
    main()
