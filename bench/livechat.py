#!/usr/bin/env python3
"""Live-chat benchmark: many concurrent widget connections against a real `loket chat` process.

Usage (from the repository root):
    .venv/bin/python bench/livechat.py [--visitors 5000] [--chatting 100] [--seconds 20]
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/livechat.py

What it does, in one client process (asyncio, the `websockets` client):
1. migrates a fresh desk (SQLite in a temporary folder, or a fresh PostgreSQL schema) and starts
   `python -m core.cli chat`, the process `loket serve` starts beside gunicorn;
2. opens ``--visitors`` sockets (each says hello and gets its signed token) and measures the chat
   process's resident memory before and after: memory per connection;
3. lets ``--chatting`` of them write one message every two seconds for ``--seconds``: the
   latency from sending to the acknowledgement (the message is committed first), and from
   sending to the message arriving on the visitor's second socket (the fan-out path);
4. has an agent reply to each chatting visitor from this process (core's reply service: the
   outbox, then the chat process finds it), timing the reply's arrival on the socket;
5. restarts the chat process while agents' replies are written, and times until every visitor
   has reconnected (with its token and the last message id it saw) and checks that each
   chatting visitor received its reply exactly once.
The machine is shared and noisy: run it twice and quote the median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))


def raise_open_files(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(wanted, soft), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Desk:
    """A migrated desk, and the environment the chat process runs with."""

    def __init__(self, workdir: Path, port: int = 0):
        from core import create_app
        from core.migrate import upgrade

        url = os.environ.get("BENCH_DATABASE_URL", "")
        self.schema = None
        if url:
            import psycopg2

            self.schema = f"bench_{uuid.uuid4().hex[:10]}"
            self.admin_url = url
            conn = psycopg2.connect(url)
            conn.autocommit = True
            conn.cursor().execute(f'CREATE SCHEMA "{self.schema}"')
            conn.close()
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}options=-csearch_path%3D{self.schema}"
        else:
            url = f"sqlite:///{workdir / 'desk.db'}"
        self.port = port or free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LOKET_")}
        self.env.update({
            "LOKET_INSTANCE_PATH": str(workdir / "instance"), "LOKET_DATABASE_URL": url,
            "LOKET_SECRET_KEY": "bench-secret", "LOKET_PLUGINS": "livechat",
            "LOKET_JOBS": "immediate", "LOKET_PUBLIC_URL": "http://desk.bench",
            "LOKET_LIVECHAT_BIND": f"127.0.0.1:{self.port}",
            "LOKET_LIVECHAT_CONNECTIONS_PER_ADDRESS": "1000000",
            "LOKET_LIVECHAT_ADDRESS_RATE_PER_MINUTE": "1000000",
            "LOKET_LIVECHAT_POLL_SECONDS": "0.05",
        })
        os.environ.update(self.env)
        self.app = create_app()
        upgrade(self.app.extensions["loket"])
        self.proc: subprocess.Popen | None = None
        self.log = (workdir / "chat.log").open("ab")

    def start_chat(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "core.cli", "chat"], cwd=REPO,
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the chat process did not start; see chat.log")

    def stop_chat(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)

    def agent(self) -> Any:
        from core import db
        from core.models import Staff

        with self.app.app_context(), db.connection():
            return Staff.create(email="agent@bench.test", name="Bench Agent", role="admin")

    def reply(self, staff: Any, message_id: int, text: str) -> tuple[int, float]:
        """The reply's id, and when its transaction (and the inline outbox run) was done."""
        from core import db
        from core.models import Message, Ticket
        from core.services import tickets

        with self.app.app_context(), db.connection():
            ticket = Ticket.get_by_id(Message.get_by_id(message_id).ticket_id)
            message = tickets.reply(ticket, staff, text, status=None)
            return message.id, time.perf_counter()

    def close(self) -> None:
        self.stop_chat()
        if self.schema:
            import psycopg2

            conn = psycopg2.connect(self.admin_url)
            conn.autocommit = True
            conn.cursor().execute(f'DROP SCHEMA "{self.schema}" CASCADE')
            conn.close()


class Widget:
    """One visitor's socket, reconnecting with its token and last seen id like the widget."""

    def __init__(self, url: str):
        self.url = url
        self.token: str | None = None
        self.ws: Any = None
        self.last = 0
        self.seen: dict[int, int] = {}  # message id -> times received
        self.waiters: dict[str, asyncio.Future] = {}
        self.arrivals: dict[str, asyncio.Future] = {}
        self.reader: asyncio.Task | None = None
        self.welcomed = asyncio.Event()

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        self.welcomed.clear()
        self.ws = await connect(self.url, origin="http://desk.bench", open_timeout=60,
                                compression=None, ping_interval=None)
        await self.ws.send(json.dumps({"type": "hello", "token": self.token,
                                       "last_seen": self.last, "name": "Bench"}))
        self.reader = asyncio.create_task(self.read())
        await self.welcomed.wait()

    async def read(self) -> None:
        try:
            async for frame in self.ws:
                event = json.loads(frame)
                kind = event["type"]
                if kind == "welcome":
                    self.token = event["token"]
                    self.welcomed.set()
                elif kind == "ack":
                    future = self.waiters.pop(event["client_id"], None)
                    if future and not future.done():
                        future.set_result(time.perf_counter())
                elif kind == "message":
                    self.seen[event["id"]] = self.seen.get(event["id"], 0) + 1
                    self.last = max(self.last, event["id"])
                    future = self.arrivals.pop(event["text"], None)
                    if future and not future.done():
                        future.set_result(time.perf_counter())
        except Exception:
            pass

    async def say(self, text: str) -> tuple[float, int]:
        client_id = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        self.waiters[client_id] = loop.create_future()
        started = time.perf_counter()
        await self.ws.send(json.dumps({"type": "message", "client_id": client_id,
                                       "text": text}))
        acked = await asyncio.wait_for(self.waiters[client_id], 30)
        return acked - started, client_id

    def expect(self, key: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.arrivals[key] = future
        return future


async def open_all(widgets: list[Widget], parallel: int = 200) -> float:
    gate = asyncio.Semaphore(parallel)
    started = time.perf_counter()

    async def one(widget: Widget) -> None:
        async with gate:
            for attempt in range(30):
                try:
                    await widget.connect()
                    return
                except Exception:
                    await asyncio.sleep(0.2 + random.random() * min(2 ** attempt * 0.1, 2))
            raise RuntimeError("a visitor could not connect")

    await asyncio.gather(*(one(w) for w in widgets))
    return time.perf_counter() - started


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="loket-livechat-bench-"))
    limit = raise_open_files(args.visitors * 2 + args.chatting * 2 + 512)
    desk = Desk(workdir, args.port)
    desk.start_chat()
    staff = desk.agent()
    url = f"ws://127.0.0.1:{desk.port}/"
    results: dict[str, Any] = {"visitors": args.visitors, "chatting": args.chatting,
                               "open_files_limit": limit,
                               "database": "postgresql" if desk.schema else "sqlite"}
    try:
        await asyncio.sleep(1)
        base_rss = rss_mb(desk.proc.pid)
        widgets = [Widget(url) for _ in range(args.visitors)]
        results["connect_all_seconds"] = round(await open_all(widgets), 2)
        await asyncio.sleep(2)
        full_rss = rss_mb(desk.proc.pid)
        results["chat_process_rss_mb"] = {"idle": round(base_rss, 1), "loaded": round(full_rss, 1)}
        results["kb_per_connection"] = round((full_rss - base_rss) * 1024 / args.visitors, 1)

        chatting = widgets[:args.chatting]
        # A second socket for each chatting visitor: the fan-out path (another tab).
        tabs = []
        for widget in chatting:
            tab = Widget(url)
            tab.token = widget.token
            tabs.append(tab)
        await open_all(tabs)
        ack_ms: list[float] = []
        fanout_ms: list[float] = []
        deadline = time.perf_counter() + args.seconds

        async def chatter(index: int) -> None:
            widget, tab = chatting[index], tabs[index]
            await asyncio.sleep(random.random() * 2)
            while time.perf_counter() < deadline:
                key = uuid.uuid4().hex
                text = f"question {key}"
                arrival = tab.expect(text)
                started = time.perf_counter()
                acked, client_id = await widget.say(text)
                ack_ms.append(acked * 1000)
                try:
                    fanout_ms.append((await asyncio.wait_for(arrival, 10) - started) * 1000)
                except TimeoutError:
                    fanout_ms.append(float("inf"))
                await asyncio.sleep(max(0.0, 2 - (time.perf_counter() - started)))

        await asyncio.gather(*(chatter(i) for i in range(len(chatting))))
        results["visitor_message_ack_ms"] = _summary(ack_ms)
        results["visitor_message_to_other_tab_ms"] = _summary(fanout_ms)

        # Agent replies from this process (as the web process would), timed to the socket:
        # from the call (the reply service's write included) and from its commit.
        reply_ms: list[float] = []
        after_commit_ms: list[float] = []
        loop = asyncio.get_running_loop()
        anchors = {i: max(chatting[i].seen) for i in range(len(chatting))}
        for round_ in range(3):
            async def reply_to(index: int, round_: int = round_) -> None:
                text = f"agent answer {round_}-{index}"
                arrival = chatting[index].expect(text)
                started = time.perf_counter()
                _id, committed = await loop.run_in_executor(None, desk.reply, staff,
                                                            anchors[index], text)
                arrived = await asyncio.wait_for(arrival, 30)
                reply_ms.append((arrived - started) * 1000)
                after_commit_ms.append(max(arrived - committed, 0.0) * 1000)
            await asyncio.gather(*(reply_to(i) for i in range(len(chatting))))
        results["agent_reply_call_to_socket_ms"] = _summary(reply_ms)
        results["agent_reply_commit_to_socket_ms"] = _summary(after_commit_ms)

        # Restart the chat process; agents answer while it is down; every visitor comes back.
        desk.stop_chat()
        down_replies = {}
        for index in range(len(chatting)):
            down_replies[index], _at = await loop.run_in_executor(
                None, desk.reply, staff, anchors[index],
                f"written while the chat process was down {index}")
        restarted = time.perf_counter()
        desk.start_chat()
        for widget in widgets + tabs:
            if widget.reader:
                widget.reader.cancel()
        results["reconnect_all_seconds"] = round(await open_all(widgets + tabs, parallel=500), 2)
        results["reconnect_all_seconds_from_restart"] = round(time.perf_counter() - restarted, 2)
        await asyncio.sleep(2)
        lost = [i for i, mid in down_replies.items() if chatting[i].seen.get(mid, 0) == 0]
        doubled = sum(1 for w in widgets for n in w.seen.values() if n > 1)
        results["replies_written_while_down"] = len(down_replies)
        results["lost_after_reconnect"] = len(lost)
        results["received_twice"] = doubled
        results["chat_process_rss_mb"]["after_reconnect"] = round(rss_mb(desk.proc.pid), 1)
        for widget in widgets + tabs:
            await widget.ws.close()
    finally:
        desk.close()
    return results


def _summary(values: list[float]) -> dict[str, float]:
    finite = [v for v in values if v != float("inf")]
    return {"count": len(values), "timeouts": len(values) - len(finite),
            "p50": round(percentile(finite, 50), 1), "p99": round(percentile(finite, 99), 1),
            "mean": round(statistics.fmean(finite), 1) if finite else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--visitors", type=int, default=5000)
    parser.add_argument("--chatting", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--port", type=int, default=0,
                        help="the chat process's port (default: a free one)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args)), indent=2))


if __name__ == "__main__":
    main()
