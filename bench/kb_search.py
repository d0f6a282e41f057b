#!/usr/bin/env python3
"""Knowledge-base search benchmark: 100,000 articles in en/id/fil, query times, suggestions under wrk.

Usage (from the repository root, with the virtualenv's Python):
    .venv/bin/python bench/kb_search.py [--articles 100000] [--queries 600] [--duration 15]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/kb_search.py

1. A throwaway desk (bench/run.py's Desk: fresh instance folder or PostgreSQL schema,
   `loket db upgrade`) gets the demo articles and ``--articles`` generated ones, a third
   per language, bulk-inserted in batches (the database's triggers index them as the
   console's saves would), with progress on stderr.
2. In this process, ``search()`` runs a fixed mix of customer queries (whole questions,
   Indonesian affixed forms, Filipino Taglish, typos, half-typed words) ``--queries``
   times: p50/p90/p99/max milliseconds, as the search page and the suggestions ask.
3. gunicorn (gunicorn.conf.py, rate limits off) serves GET /kb/suggest under wrk
   (kb_suggest.lua cycles the same queries), at 2 connections (latency without a queue)
   and at --connections (throughput): requests/s, latency percentiles, the web workers'
   CPU per request (from /proc), peak RSS, the load average before and after.
In-process figures carry CPU per search beside wall time: the host is shared.
Figures go to bench/results/<time>-kb-<database>.json (git-ignored).
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import statistics
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run as base  # noqa: E402  (bench/run.py: the desk, the server, wrk)

QUERIES = {
    "en": ["verification email did not arrive", "I forgot my password", "reset pasword",
           "cancel subscription renewal", "strange charge on my card", "change email address",
           "when do I get paid payout", "sign up form does not submit", "verif"],
    "id": ["email verifikasi tidak masuk", "lupa kata sandi", "pembatalan berlangganan",
           "tagihan kartu tidak dikenali", "mengubah alamat email", "kapan pembayaran",
           "tautan verifikasi kedaluwarsa", "kata sandy", "pendaf"],
    "fil": ["hindi dumating ang verification email", "paano i-reset ang password",
            "gusto kong i-cancel ang subscription", "may charge sa card ko",
            "palitan ang email", "kailan ang payout", "expired na ang link", "pasword",
            "nag-sign"],
}


def _free_port() -> int:
    # Several people benchmark on this host: a fixed port may be taken.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def parse_args() -> Any:
    parser = base.argument_parser(__doc__.splitlines()[0], port=_free_port())
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=600, help="in-process searches")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--no-http", action="store_true",
                        help="in-process searches only (no gunicorn, no wrk); with --keep, "
                             "a desk for bench/kb_ab.py")
    return parser.parse_args()


def _vocabulary(language: str, rng: random.Random) -> list[str]:
    """The demo articles' words plus made-up ones, in a random Zipf order (a few very common)."""
    from plugins.knowledge_base.demo import DEMO
    from plugins.knowledge_base.text import words

    found: set[str] = set()
    for entries in DEMO.values():
        for _slug, translations in entries:
            title, body = translations[language]
            found.update(words(f"{title} {body}"))
    syllables = ["ka", "ma", "ta", "pa", "la", "ri", "su", "ne", "do", "gi", "bo", "an", "en"]
    while len(found) < 6000:
        found.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    ordered = sorted(found)
    rng.shuffle(ordered)
    return ordered


def _paragraph(words: list[str], cumulative: list[float], rng: random.Random,
               language: str) -> tuple[str, str, str]:
    """(Markdown, HTML, analysed words) of one generated paragraph."""
    from plugins.knowledge_base.render import markdown_to_html
    from plugins.knowledge_base.text import analyse

    text = " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(20, 40))) + "."
    return text, markdown_to_html(text), " ".join(analyse(text, language))


def generate(desk: base.Desk, count: int, seed: int) -> float:
    """Bulk-insert ``count`` articles (a third per language); returns the seconds it took."""
    from core import db
    from core.models import Category
    from plugins.knowledge_base import demo
    from plugins.knowledge_base.models import Article, Status, new_group, remember_words, utcnow
    from plugins.knowledge_base.text import analyse

    rng = random.Random(seed)
    started = time.monotonic()
    with desk.app.test_request_context("/"), db.connection():
        demo_count = 0
        category = Category.get(Category.slug == "account")
        for _slug, translations in [e for entries in demo.DEMO.values() for e in entries]:
            group = new_group()
            for language, (title, body) in translations.items():
                slug = f"{_slug}-{demo_count}"
                Article(group=group, language=language, category=category, slug=slug,
                        title=title, body=body, status=Status.PUBLISHED).save()
            demo_count += 1
        languages = ["en", "id", "fil"]
        vocab = {language: _vocabulary(language, rng) for language in languages}
        cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(6000)))
        batch: list[tuple[Any, ...]] = []
        now = utcnow()
        database = desk.app.extensions["loket"].database
        mark = "?" if db.is_sqlite() else "%s"
        insert = ('INSERT INTO kb_article ("group", language, category_id, user_type_id, slug, '
                  "title, body, body_html, status, position, updated_at, index_title, "
                  f"index_body) VALUES ({', '.join([mark] * 13)})")
        # Bodies are three paragraphs from a pool of 3,000 per language, each rendered and
        # analysed once: Markdown and stemming of 100,000 whole bodies would take most of
        # the run, and the index cannot tell a reused paragraph from a new one.
        pools = {language: [_paragraph(vocab[language], cumulative, rng, language)
                            for _ in range(3000)] for language in languages}
        for number in range(count):
            language = languages[number % 3]
            title = " ".join(rng.choices(vocab[language], cum_weights=cumulative,
                                         k=rng.randint(4, 8))).capitalize()[:200]
            chosen = rng.sample(pools[language], 3)
            batch.append((
                new_group(), language, category.id, category.user_type_id,
                f"generated-{number}", title, "\n\n".join(p[0] for p in chosen),
                "\n".join(p[1] for p in chosen), Status.PUBLISHED, number, now,
                " ".join(analyse(title, language)), " ".join(p[2] for p in chosen)))
            if len(batch) == 1000 or number == count - 1:
                # executemany: peewee would spend more time building the SQL than the
                # database takes to run it (the triggers index each row either way).
                with db.write_transaction():
                    if db.is_sqlite():
                        database.cursor().executemany(insert, batch)
                    else:  # one statement per batch: a round trip per row is most of the time
                        from psycopg2.extras import execute_values

                        execute_values(database.cursor(), insert.split(" VALUES")[0]
                                       + " VALUES %s", batch, page_size=1000)
                batch = []
                done = number + 1
                rate = done / (time.monotonic() - started)
                print(f"\r  {done:,} / {count:,} articles ({rate:,.0f}/s)", end="",
                      file=sys.stderr, flush=True)
        print(file=sys.stderr)
        for language in languages:
            remember_words(language, vocab[language])
        if not db.is_sqlite():
            desk.app.extensions["loket"].database.execute_sql("ANALYZE kb_article")
    return time.monotonic() - started


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": round(ordered[-1], 2),
            "mean": round(statistics.fmean(ordered), 2)}


def time_searches(desk: base.Desk, total: int) -> dict[str, Any]:
    """In-process search times (ms), the search page's way and the suggestions' way."""
    from core import db
    from core.models import UserType
    from plugins.knowledge_base.search import articles, search

    results: dict[str, Any] = {}
    with desk.app.test_request_context("/"), db.connection():
        member = UserType.get(UserType.slug == "member")
        mix = [(lang, q) for lang, queries in QUERIES.items() for q in queries]
        for label, partial in (("search", False), ("suggest", True)):
            samples: list[float] = []
            cpu: list[float] = []
            empty = 0
            for number in range(total):
                language, query = mix[number % len(mix)]
                started, started_cpu = time.perf_counter(), time.process_time()
                found = articles(search(query, language, user_type_id=member.id, limit=10,
                                        partial=partial))
                samples.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
                empty += not found
            # CPU of this process only: on PostgreSQL the server's share is not in it.
            results[label] = {**_percentiles(samples), "cpu_ms": _percentiles(cpu),
                              "queries": total, "queries_without_results": empty,
                              "load": _load()}
    return results


def _load() -> float:
    """The one-minute load average: beside every figure, since the host is shared."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (from /proc)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def load_run(args: Any, server: base.Server, url: str, env: dict[str, str],
             connections: int) -> dict[str, Any]:
    """One wrk run at ``connections``, with the web workers' CPU per request and the load."""
    import argparse

    run_args = argparse.Namespace(**{**vars(args), "connections": connections,
                                     "threads": min(args.threads, connections)})
    workers = server.workers()
    before, load_before = _cpu_seconds(workers), _load()
    result = base.run_wrk(run_args, url, BENCH / "kb_suggest.lua", env)
    used = _cpu_seconds(workers) - before
    result["worker_cpu_ms_per_request"] = round(1000 * used / max(1, result["requests"]), 2)
    result["connections"] = connections
    result["load"] = [load_before, _load()]
    return result


def _print_timings(timings: dict[str, Any]) -> None:
    for label, figures in timings.items():
        cpu = figures["cpu_ms"]
        print(f"  {label:8} p50 {figures['p50']} ms  p90 {figures['p90']} ms  "
              f"p99 {figures['p99']} ms  max {figures['max']} ms; CPU p50 {cpu['p50']} "
              f"p99 {cpu['p99']} ms "
              f"({figures['queries_without_results']} of {figures['queries']} found nothing; "
              f"load {figures['load']})")


def _in_process_only(args: Any, desk: base.Desk, load_seconds: float,
                     timings: dict[str, Any]) -> int:
    print(f"{desk.kind}: {args.articles:,} articles loaded in {load_seconds:.0f} s")
    _print_timings(timings)
    return 0


def main() -> int:
    args = parse_args()
    desk = base.Desk(args.database_url, ["LOKET_PLUGINS=knowledge_base", *args.env])
    server = None
    try:
        desk.setup()
        print(f"Generating {args.articles:,} articles on {desk.kind}...", file=sys.stderr)
        load_seconds = generate(desk, args.articles, args.seed)
        print("Timing searches in-process...", file=sys.stderr)
        timings = time_searches(desk, args.queries)
        if args.no_http:
            return _in_process_only(args, desk, load_seconds, timings)
        server = base.Server(desk, args)
        path = "/kb/suggest?user_type=member&category=account"
        server.wait_ready(path + "&q=password")
        sampler = server.sample_rss()
        queries = "\n".join(urllib.parse.quote(q) for qs in QUERIES.values() for q in qs)
        env = {"BENCH_PATH": path, "BENCH_QUERIES": queries}
        # Two customers typing at once (latency without a queue), then --connections
        # (throughput; latency there is mostly waiting for a free worker thread).
        light = load_run(args, server, server.base + path, env, 2)
        load = load_run(args, server, server.base + path, env, args.connections)
        server._sampling = False
        sampler.join(timeout=2)
    finally:
        if server is not None:
            server.stop()
        kind = desk.kind
        if args.keep and desk.schema:  # kept for bench/kb_ab.py: drop it by hand
            print(f"  kept schema {desk.schema}", file=sys.stderr)
            desk.schema = ""
        elif args.keep:
            print(f"  kept instance {desk.instance}", file=sys.stderr)
        desk.close(args.keep)
    results = {
        "database": kind, "articles": args.articles, "load_seconds": round(load_seconds, 1),
        "search_ms": timings,
        "suggest_endpoint": {k: v for k, v in load.items() if k != "raw"},
        "suggest_endpoint_light": {k: v for k, v in light.items() if k != "raw"},
        "peak_rss_mb": sorted((round(kb / 1024) for kb in server.peak_rss_kb.values()),
                              reverse=True),
        "wrk": {"threads": args.threads, "connections": args.connections,
                "duration_s": args.duration},
        "gunicorn": {"workers": args.workers, "worker_class": args.worker_class,
                     "threads": args.web_threads},
        "raw": load["raw"],
    }
    saved = base.save_results(results, f"kb-{kind}")
    print(f"{kind}: {args.articles:,} articles loaded in {load_seconds:.0f} s")
    _print_timings(timings)
    for run in (light, load):
        latency = run["latency_ms"]
        print(f"  /kb/suggest under wrk ({run['connections']} connections, {args.duration} s): "
              f"{run['requests_per_s']:.0f} req/s, p50 {latency.get('50')} ms, "
              f"p99 {latency.get('99')} ms, worker CPU {run['worker_cpu_ms_per_request']} ms "
              f"per request, non-2xx {run['non_2xx_3xx']}, socket errors "
              f"{run['socket_errors']}, load {run['load']}")
    print(f"  peak RSS per worker {results['peak_rss_mb']} MB")
    print(f"  figures: {saved}")
    bad = any(run["non_2xx_3xx"] or run["socket_errors"] for run in (light, load))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
