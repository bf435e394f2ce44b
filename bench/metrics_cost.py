"""What counting and the request id add to each pointer query the fast path answers, in microseconds.

    .venv/bin/python -m bench.metrics_cost [--old path/to/the/earlier/metrics.py]

Times, with `timeit`, the per-request work the fast path does besides answering: making the request id and
setting it for the log lines, writing its response header, timing the query into the latency histogram,
and counting the query and the HTTP request. With `--old` (the hand-written registry this replaced:
`git show <commit>:spsp_pull/metrics.py > old.py`) it times what that one did per request too.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
import timeit
from collections.abc import Callable
from pathlib import Path

from spsp_pull.api.request_id import HEADER, request_id
from spsp_pull.logging_setup import REQUEST_ID
from spsp_pull.metrics import Metrics, elapsed_since

ROUNDS = 200_000


def new_per_request(metrics: Metrics) -> Callable[[], None]:
    def one() -> None:
        rid = request_id(None)
        token = REQUEST_ID.set(rid)
        started = time.perf_counter_ns()
        metrics.query_answered()
        metrics.query_took(elapsed_since(started))
        REQUEST_ID.reset(token)
        _ = f"{HEADER}: {rid}\r\n"
        metrics.http_request("GET", 200)

    return one


def old_per_request(path: Path) -> Callable[[], None]:
    spec = importlib.util.spec_from_file_location("old_metrics", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    metrics = module.Metrics()

    def one() -> None:
        metrics.inc("spsp_queries_total", help_text="SPSP queries answered")
        metrics.inc("spsp_http_requests_total", help_text="HTTP requests", method="GET", status=str(200))

    return one


def microseconds(work: Callable[[], None]) -> float:
    return min(timeit.repeat(work, number=ROUNDS, repeat=5)) / ROUNDS * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, help="the earlier spsp_pull/metrics.py, to compare")
    args = parser.parse_args()
    new = microseconds(new_per_request(Metrics()))
    print(f"now:    {new:.2f} us per query (id, header, histogram, two counters)")
    if args.old is not None:
        old = microseconds(old_per_request(args.old))
        print(f"before: {old:.2f} us per query (two counters)")
        print(f"added:  {new - old:.2f} us per query")


if __name__ == "__main__":
    main()
