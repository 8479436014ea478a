"""`make bench`: every benchmark, each printing our figure beside its baseline from the same run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = [
    ["bench_import.py", "--count", "100000"],
    ["bench_read.py", "--count", "100000"],
    ["bench_rotation.py", "--count", "100000", "--others", "20000"],
    ["providers.py"],
    ["bench_policy.py", "--customers", "2000"],
    ["bench_audit.py", "--count", "100000", "--proof-size", "1000000"],
    ["bench_detect.py", "--seed", "7"],
    ["bench_consent.py", "--customers", "1000000"],
    ["bench_outbox.py"],
    ["bench_rights.py", "--count", "100000"],
    ["bench_sensitive.py", "--count", "100000"],
]


def main() -> None:
    for bench in BENCHES:
        print(f"\n== {' '.join(bench)}", flush=True)
        subprocess.run([sys.executable, str(HERE / bench[0]), *bench[1:]], cwd=HERE, check=True)


if __name__ == "__main__":
    main()
