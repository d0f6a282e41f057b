#!/usr/bin/env python3
"""Side by side: bench/run.py on an earlier commit and on this tree, in alternating rounds.

The machine is shared and noisy, so two figures are only comparable when they
were taken together: each round runs the base, then this tree (each with its
own settings), and the medians of the rounds are compared.

Usage (from the repository root):
    .venv/bin/python bench/compare.py --base 050dd95 --rounds 3 \\
        --head-env LOKET_PLUGINS=email_intake --head-env LOKET_EMAIL_INTAKE_ADDRESS=help@x.test \\
        --head-env LOKET_EMAIL_INTAKE_SMTP_HOST=127.0.0.1 -- --duration 10
Arguments after ``--`` go to both runs of bench/run.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


def run(tree: Path, settings: list[str], extra: list[str]) -> dict:
    command = [sys.executable, str(tree / "bench" / "run.py"), *extra]
    for setting in settings:
        command += ["--env", setting]
    out = subprocess.run(command, cwd=tree, capture_output=True, text=True)
    path = next((line.split("Results: ", 1)[1] for line in out.stdout.splitlines()
                 if line.startswith("Results: ")), None)
    if out.returncode != 0 or path is None:
        raise SystemExit(f"bench/run.py failed in {tree}:\n{out.stdout}\n{out.stderr}")
    return json.loads(Path(path).read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base-env", action="append", default=[])
    parser.add_argument("--head-env", action="append", default=[])
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    base_tree = Path(tempfile.mkdtemp(prefix="loket-base-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.base],
                   cwd=REPO, check=True, capture_output=True)
    # bench/run.py of this tree drives both, so only the server's code differs.
    (base_tree / "bench" / "run.py").write_text((BENCH / "run.py").read_text())
    (base_tree / "bench" / "submit.lua").write_text((BENCH / "submit.lua").read_text())
    rows: dict[str, list[dict]] = {"base": [], "head": []}
    try:
        for n in range(args.rounds):
            for label, tree, settings in (("base", base_tree, args.base_env),
                                          ("head", REPO, args.head_env)):
                result = run(tree, settings, extra)
                rows[label].append(result)
                print(f"round {n + 1} {label}: {result['submit']['tickets_per_s']} tickets/s, "
                      f"p99 {result['submit']['latency_ms'].get('99')} ms, tracking "
                      f"{result['tracking']['requests_per_s']} req/s", flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=REPO,
                       capture_output=True)

    def median(label: str, pick: callable) -> float:
        return statistics.median(pick(r) for r in rows[label])

    print(f"\nmedians of {args.rounds} rounds ({rows['head'][0]['database']}):")
    for name, pick in (("tickets/s", lambda r: r["submit"]["tickets_per_s"]),
                       ("submit p99 ms", lambda r: r["submit"]["latency_ms"].get("99", 0)),
                       ("tracking req/s", lambda r: r["tracking"]["requests_per_s"])):
        base, head = median("base", pick), median("head", pick)
        print(f"  {name:16} base {base:8.1f}   head {head:8.1f}   "
              f"({(head - base) / base * 100:+.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
