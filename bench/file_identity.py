"""Cost of the cache's video identity (SHA-256 of the whole file) on a large file.

    .venv/bin/python bench/file_identity.py --gigabytes 1
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from hawor.pipeline.cache import file_identity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.bin"
        block = os.urandom(1 << 24)
        with open(path, "wb") as f:
            for _ in range(int(args.gigabytes * (1 << 30)) // len(block)):
                f.write(block)
        for label in ("first read (page cache warm after writing)", "second read"):
            start = time.perf_counter()
            file_identity(path)
            seconds = time.perf_counter() - start
            print(f"{label}: {seconds:.2f} s, {path.stat().st_size / seconds / 1e9:.2f} GB/s")


if __name__ == "__main__":
    main()
