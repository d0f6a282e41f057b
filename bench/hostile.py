#!/usr/bin/env python3
"""Hostile-load check: the submission benchmark, undisturbed and then while slow clients and
oversized bodies hit the same server; reports the honest customers' throughput and p99 of both.

Usage (from the repository root, with the virtualenv's Python; needs wrk):
    .venv/bin/python bench/hostile.py [--rounds 3] [--duration 8] [--slow-clients 50]
See bench/README.md. Exits 1 when the honest throughput under attack is below --aim (0.8) of
the undisturbed run, or when an honest request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as base  # noqa: E402  (bench/run.py: the desk, the server, wrk)

OVERSIZED_DECLARED = 63 * 1024 * 1024  # the report's body: refused from its Content-Length
AMPLIFIER = b"[" + b"{}," * (3_500_000 - 1) + b"{}]"  # 10.5 MB of empty objects, fully sent
CHUNK = b"{}," * 21_845  # 64 KB


def parse_args() -> argparse.Namespace:
    parser = base.argument_parser(__doc__.splitlines()[0], port=8091)
    parser.add_argument("--rounds", type=int, default=3,
                        help="undisturbed and attacked runs, alternating")
    parser.add_argument("--slow-clients", type=int, default=50,
                        help="connections that send one header line every --slow-interval s")
    parser.add_argument("--slow-interval", type=float, default=5.0)
    parser.add_argument("--oversized-senders", type=int, default=2,
                        help="connections sending oversized bodies one after another")
    parser.add_argument("--oversized-rate", type=float, default=0,
                        help="bodies per second per sender (0: the next as soon as the server "
                             "answers the last)")
    parser.add_argument("--aim", type=float, default=0.8,
                        help="least share of the undisturbed throughput to pass")
    parser.set_defaults(duration=8)  # per run; 3 rounds of two runs stay under two minutes
    return parser.parse_args()


# -- The attackers -----------------------------------------------------------------------------


class Attack:
    """Slow clients and oversized bodies, on an asyncio loop in a thread of this process."""

    def __init__(self, port: int, form_path: str, args: argparse.Namespace):
        self.port, self.form_path, self.args = port, form_path, args
        self.loop = asyncio.new_event_loop()
        self.stopping = False
        self.stats: Counter[str] = Counter()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping = True
        self.thread.join(timeout=15)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        tasks = [self._slow(n) for n in range(self.args.slow_clients)]
        tasks += [self._oversized(n) for n in range(self.args.oversized_senders)]
        self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))

    async def _slow(self, n: int) -> None:
        """Start a request, then send one more header line every few seconds, forever."""
        while not self.stopping:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.stats["slow: connect failed"] += 1
                await asyncio.sleep(1)
                continue
            self.stats["slow: connections"] += 1
            writer.write(f"POST {self.form_path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode())
            line = 0
            try:
                while not self.stopping:
                    await writer.drain()
                    # Wake every 0.5 s to notice the end of the run, write on the interval.
                    for _ in range(int(self.args.slow_interval / 0.5)):
                        if self.stopping or reader.at_eof():
                            break
                        await asyncio.sleep(0.5)
                    if reader.at_eof():
                        self.stats["slow: closed by the server"] += 1
                        break
                    line += 1
                    writer.write(f"X-Slow-{n}-{line}: still typing\r\n".encode())
            except (ConnectionError, OSError):
                self.stats["slow: closed by the server"] += 1
            writer.close()

    async def _oversized(self, n: int) -> None:
        """Bodies the server must refuse: 63 MB declared, or 10.5 MB of empty JSON objects."""
        turn = 0
        pause = 1 / self.args.oversized_rate if self.args.oversized_rate else 0.0
        while not self.stopping:
            turn += 1
            started = time.monotonic()
            declared = turn % 2 == 1
            size = OVERSIZED_DECLARED if declared else len(AMPLIFIER)
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write((f"POST /api/v1/tickets HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              f"Content-Type: application/json\r\nContent-Length: {size}\r\n"
                              f"X-Forwarded-For: 192.0.2.{n + 1}\r\n\r\n").encode())
                answer = asyncio.ensure_future(reader.readline())
                sent = 0
                try:
                    while sent < size and not answer.done() and not self.stopping:
                        chunk = CHUNK if declared else AMPLIFIER[sent:sent + len(CHUNK)]
                        writer.write(chunk[:size - sent])
                        sent += len(chunk)
                        await writer.drain()
                except (ConnectionError, OSError):
                    pass  # the server answered and closed while we were still sending
                status_line = await asyncio.wait_for(answer, timeout=30)
                status = status_line.split(b" ")[1].decode() if status_line else "closed"
                kind = "63 MB declared" if declared else "10.5 MB of {}"
                self.stats[f"oversized ({kind}): {status}"] += 1
                self.stats["oversized: MB sent"] += sent // (1024 * 1024)
                writer.close()
                await asyncio.sleep(max(pause - (time.monotonic() - started), 0))
            except (TimeoutError, ConnectionError, OSError) as exc:
                self.stats[f"oversized: {type(exc).__name__}"] += 1
                await asyncio.sleep(0.2)


# -- The honest customers ------------------------------------------------------------------------


def fetch_form(server: base.Server, path: str) -> tuple[str, str, str]:
    """(Cookie header, csrf token, shown-at stamp) of the form, as a browser gets them."""
    cookie, token = base.form_session(server.base, path)
    request = urllib.request.Request(server.base + path, headers={"Cookie": cookie})
    page = urllib.request.urlopen(request, timeout=10).read().decode()
    match = re.search(r'name="shown_at"[^>]*value="([^"]+)"', page)
    if match is None:
        raise SystemExit("no shown_at on the ticket form")
    return cookie, token, match.group(1)


def honest_run(args: argparse.Namespace, server: base.Server, desk: base.Desk, path: str,
               cookie: str, token: str, shown_at: str) -> dict[str, Any]:
    before = desk.tickets()
    result = base.run_wrk(args, server.base + path, BENCH / "submit.lua", {
        "BENCH_PATH": path, "BENCH_COOKIE": cookie, "BENCH_CSRF": token,
        "BENCH_SHOWN_AT": shown_at, "BENCH_FORWARDED": "random"})
    result["tickets_created"] = desk.tickets() - before
    result["tickets_per_s"] = round(result["tickets_created"] / args.duration, 1)
    return result


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    args = parse_args()
    desk = base.Desk(args.database_url)
    # The abuse limits stay on: the customers come through a trusted proxy, each from their
    # own address (X-Forwarded-For), the attackers from theirs.
    desk.env.update({"LOKET_RATE_LIMITS": "true", "LOKET_TRUSTED_PROXIES": "1",
                     "LOKET_FORM_MIN_SECONDS": "3"})
    os.environ.update(desk.env)
    server = None
    attack = None
    rounds: list[dict[str, Any]] = []
    try:
        form_path, _tracking = desk.setup()
        server = base.Server(desk, args)
        server.wait_ready(form_path)
        cookie, token, shown_at = fetch_form(server, form_path)
        time.sleep(3.5)  # a person takes longer than the form's minimum fill time
        sampler = server.sample_rss()
        # Undisturbed and attacked runs alternate, so that a change in the shared host's own
        # load falls on both sides rather than on one.
        for _ in range(args.rounds):
            before = server.cpu_seconds()
            calm = honest_run(args, server, desk, form_path, cookie, token, shown_at)
            calm["worker_cpu_s"] = base.cpu_split(before, server.cpu_seconds())
            attack = Attack(args.port, form_path, args)
            attack.start()
            time.sleep(args.slow_interval + 1)  # let every slow client take its place first
            before, attacker_before = server.cpu_seconds(), _own_cpu()
            hostile = honest_run(args, server, desk, form_path, cookie, token, shown_at)
            hostile["worker_cpu_s"] = base.cpu_split(before, server.cpu_seconds())
            # The attackers run in this process, on the same cores as the server and wrk.
            hostile["attacker_cpu_s"] = round(_own_cpu() - attacker_before, 1)
            attack.stop()
            hostile["attack"] = dict(attack.stats)
            rounds.append({"undisturbed": calm, "under_attack": hostile})
            time.sleep(1)  # the attackers' connections close before the next quiet run
        server._sampling = False
        sampler.join(timeout=2)
        rss = [round(kb / 1024, 1) for kb in sorted(server.peak_rss_kb.values())]
    finally:
        if attack is not None:
            attack.stopping = True
        if server is not None:
            server.stop()
        desk.close(args.keep)

    def total(side: str) -> float:
        return round(sum(r[side]["tickets_created"] for r in rounds)
                     / (args.duration * len(rounds)), 1)

    def p99(side: str) -> float:
        return statistics.median(r[side]["latency_ms"].get("99", 0.0) for r in rounds)

    calm_rate, hostile_rate = total("undisturbed"), total("under_attack")
    ratio = hostile_rate / calm_rate if calm_rate else 0.0
    attack_stats: Counter[str] = Counter()
    for r in rounds:
        attack_stats.update(r["under_attack"]["attack"])
    results = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"), "database": desk.kind,
        "cpus": os.cpu_count(), "worker_class": args.worker_class, "workers": args.workers,
        "slow_clients": args.slow_clients, "oversized_senders": args.oversized_senders,
        "oversized_rate": args.oversized_rate, "rounds": rounds,
        "undisturbed_tickets_per_s": calm_rate, "under_attack_tickets_per_s": hostile_rate,
        "ratio": round(ratio, 2), "attack": dict(attack_stats), "peak_rss_mb_per_worker": rss,
    }
    saved = base.save_results(results, f"hostile-{desk.kind}-{args.worker_class}")

    print(f"\nLoket hostile-load check: {desk.kind}, gunicorn {args.workers} x "
          f"{args.worker_class}, wrk {args.threads} threads / {args.connections} connections, "
          f"{args.rounds} rounds of {args.duration}s undisturbed then {args.duration}s under "
          f"attack; {args.slow_clients} slow clients (a header line every "
          f"{args.slow_interval:g} s), {args.oversized_senders} oversized-body senders"
          + (f" ({args.oversized_rate:g}/s each)" if args.oversized_rate else ""))
    print(f"{'':26}{'tickets/s':>10}{'p99 ms':>9}   per round (tickets/s, p99 ms)")
    for label, side in (("undisturbed", "undisturbed"), ("under attack", "under_attack")):
        each = ", ".join(f"{r[side]['tickets_per_s']:.0f} / {r[side]['latency_ms'].get('99', 0):.0f}"
                         for r in rounds)
        print(f"{label:26}{total(side):>10.1f}{p99(side):>9.1f}   {each}")
    print(f"Under attack: {ratio:.0%} of the undisturbed throughput (aim: {args.aim:.0%})")
    for r in rounds:
        print(f"  CPU s per worker: undisturbed {r['undisturbed']['worker_cpu_s']}, under attack "
              f"{r['under_attack']['worker_cpu_s']}, attackers "
              f"{r['under_attack']['attacker_cpu_s']}")
    for key, value in sorted(attack_stats.items()):
        print(f"  {key}: {value}")
    print(f"Peak RSS per gunicorn worker: {', '.join(map(str, rss))} MB")
    print(f"Results: {saved}")
    honest = all(r[side]["non_2xx_3xx"] == 0 and r[side]["socket_errors"] == 0
                 for r in rounds for side in ("undisturbed", "under_attack"))
    if not honest or ratio < args.aim:
        print("FAILED: honest requests failed, or throughput under attack below the aim",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
