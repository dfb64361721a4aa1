"""`make bench`: every benchmark in one run, each printing medians and ratios.

    python -m evals.bench              # all of them
    python -m evals.bench retrieval    # only some
"""

from __future__ import annotations

import importlib
import sys
import time

BENCHES = ["retrieval", "ingest", "checks", "pipeline", "api"]


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or BENCHES
    failed = 0
    for name in names:
        print(f"\n=== bench: {name} " + "=" * (60 - len(name)), flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"evals.bench_{name}")
        except ModuleNotFoundError as exc:
            print(f"(not available: {exc})")
            continue
        try:
            module.main()
        except Exception as exc:  # one broken bench must not hide the others' numbers
            failed += 1
            print(f"bench {name} failed: {type(exc).__name__}: {exc}")
        print(f"--- {name}: {time.perf_counter() - t0:.1f}s wall", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
