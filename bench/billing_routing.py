"""How long the billing desk takes to read a new ticket: words alone, and the whole decision.

Runs in one process on a throwaway SQLite desk (migrated, the shipped phrases and
thresholds, the demo billing centers), over the 73 messages of the routing table
in tests/test_billing_routing.py, repeated. It reports, per message:

* ``words.find``: matching the shipped phrases (no database), the part that grows
  with the text and the phrase list;
* ``assess``: the whole decision ``route_ticket`` makes (phrases, centers and
  thresholds read from the database, descriptor search, amounts), as it runs
  before every new ticket's write;

with latency percentiles (nearest rank), messages per second, and the peak of
Python memory (tracemalloc) over one more round, traced apart from the timing. Nothing is asserted: the machine is
shared and noisy; run it twice and read both.

    .venv/bin/python bench/billing_routing.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return ordered[max(math.ceil(p * len(ordered)) - 1, 0)]

    return {"p50": rank(0.5), "p95": rank(0.95), "p99": rank(0.99), "max": ordered[-1]}


def timed(label: str, calls: list, rounds: int) -> None:
    """Latency without tracing (tracemalloc slows Python down several times), then one
    more round under tracemalloc for the memory figure."""
    samples = []
    started = time.perf_counter()
    for _ in range(rounds):
        for call in calls:
            t0 = time.perf_counter()
            call()
            samples.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    for call in calls:
        call()
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    p = percentiles(samples)
    print(f"{label:12} {len(samples):6} msgs  {len(samples) / elapsed:9.0f} msg/s  "
          + "  ".join(f"{k} {v * 1000:6.3f} ms" for k, v in p.items())
          + f"  peak {peak / 1024:,.0f} KiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    from core import create_app
    from core import db as core_db
    from core.migrate import upgrade
    from tests.test_billing_routing import TABLE

    folder = tempfile.mkdtemp(prefix="loket-bench-billing-")
    app = create_app({"instance_path": folder, "database_url": f"sqlite:///{folder}/desk.db",
                      "jobs": "immediate", "plugins": ["billing_desk"],
                      "secret_key": "bench"})
    upgrade(app.extensions["loket"])
    with app.app_context(), core_db.connection():
        from plugins.billing_desk import is_billing_category, words
        from plugins.billing_desk.demo import load
        from plugins.billing_desk.routing import active_phrases, assess

        load()
        phrases = active_phrases()
        texts = [f"Help\n{text}" for _language, text, _want in TABLE]
        print(f"{len(phrases)} phrases, {len(texts)} messages, {args.rounds} rounds, "
              f"python {sys.version.split()[0]}")
        timed("words.find", [lambda t=t: words.find(phrases, t) for t in texts], args.rounds)
        timed("assess", [lambda t=t: assess(None, {}, t, is_billing_category) for t in texts],
              args.rounds)


if __name__ == "__main__":
    main()
