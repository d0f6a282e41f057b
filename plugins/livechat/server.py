"""The chat process: one asyncio loop holding every visitor's WebSocket.

Why a separate process: an idle socket here costs one small object and no
thread, so thousands wait cheaply, while gunicorn's threaded workers would
spend a thread on each. Database work (core's blocking services) runs in a
small thread pool, each call in an app context with its own connection.

The protocol (JSON text frames), visitor to desk: ``hello`` (token, name,
email, lang, last_seen) first; then ``message`` (client_id, text),
``read``/``delivered`` (id), ``typing``, ``handover``, ``answer`` (solved),
``email``, ``rate`` (score), ``end``, ``transcript`` (email); files go over HTTP
(``/chat/upload``). Desk to visitor: ``welcome`` (token, greeting), ``message``
(with ``files``), ``ack`` (client_id, id), ``state`` (with ``seen``), ``seen``
(upto), ``typing`` (name), ``transcript`` (email, text), ``error``.
A message is committed before its ``ack``; its client id makes a resend one
message. A reconnecting widget sends the last message id it saw and gets
every later one; each socket is sent each message once.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

log = logging.getLogger("loket.livechat")

CLIENT_ID_MAX = 64
SENT_MEMORY = 2000  # message ids a socket remembers having been sent
POLL_LOOKBACK = 200  # ids re-read each poll: PostgreSQL may commit a lower id later


class Bucket:
    """A token bucket: ``rate`` actions per minute, up to a burst of a quarter of that."""

    def __init__(self, per_minute: int):
        self.rate = per_minute / 60.0
        self.capacity = max(per_minute / 4.0, 1.0)
        self.tokens = self.capacity
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Visit:
    """One open socket of one visitor."""

    def __init__(self, ws: ServerConnection, visitor: str, settings: dict[str, Any],
                 last_seen: int = 0):
        self.ws = ws
        self.floor = last_seen  # the widget has every message up to this id
        self.visitor = visitor
        self.sent: collections.OrderedDict[int, None] = collections.OrderedDict()
        self.bucket = Bucket(settings["rate_per_minute"])
        self.ready = False
        self.held: list[dict[str, Any]] = []
        self.typing_at = 0.0

    async def send(self, event: dict[str, Any]) -> None:
        if not self.ready:
            self.held.append(event)  # arrived while the resume was being read
            return
        if event.get("type") == "message":
            if event["id"] in self.sent or event["id"] <= self.floor:
                return
            self.sent[event["id"]] = None
            if len(self.sent) > SENT_MEMORY:
                self.sent.popitem(last=False)
        try:
            await self.ws.send(json.dumps(event))
        except ConnectionClosed:
            pass


class ChatServer:
    def __init__(self, app: Any):
        from core.state import loket

        self.app = app
        with app.app_context():
            state = loket()
            self.settings = dict(state.config.plugin("livechat"))
            self.proxies = state.config["trusted_proxies"]
            self.redis_url = state.config["redis_url"]
            self.public_url = state.config["public_url"]
            self.database = state.database
        self.pool = ThreadPoolExecutor(max(self.settings["db_threads"], 1),
                                       thread_name_prefix="livechat-db")
        # Its own thread: looking for agents' replies never queues behind visitors' writes.
        self.poll_pool = ThreadPoolExecutor(1, thread_name_prefix="livechat-poll")
        self.visits: dict[str, set[Visit]] = collections.defaultdict(set)
        self.per_address: collections.Counter[str] = collections.Counter()
        self.address_buckets: dict[str, Bucket] = {}
        allowed = [self.public_url, *self.settings["allowed_origins"]]
        self.origins = {_origin(url) for url in allowed if url}
        self.stopping: asyncio.Event | None = None
        # Visitors whose first socket opened, or whose last closed, since the last flush.
        self.arrived: set[str] = set()
        self.left: set[str] = set()

    # -- database calls, off the loop --------------------------------------------------------

    def _in_app(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from core.state import loket

        with self.app.app_context():
            database = loket().database
            database.connect(reuse_if_open=True)
            try:
                return fn(*args, **kwargs)
            finally:
                if not _is_sqlite(database):
                    database.close()  # back to the pool; SQLite keeps one per thread

    async def call(self, fn: Any, *args: Any, pool: ThreadPoolExecutor | None = None,
                   **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool or self.pool,
                                          lambda: self._in_app(fn, *args, **kwargs))

    # -- fan-out ---------------------------------------------------------------------------

    async def deliver(self, visitor: str, event: dict[str, Any]) -> None:
        for visit in list(self.visits.get(visitor, ())):
            await visit.send(event)

    async def spread(self, visitor: str, events: list[dict[str, Any]]) -> None:
        """Send to this visitor's sockets here, and (with Redis) to those of other processes."""
        for event in events:
            await self.deliver(visitor, event)
        if self.redis_url and events:
            from . import bus

            await self.call(lambda: [bus.publish(visitor, e) for e in events])

    async def listen_redis(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.redis_url)
        pubsub = client.pubsub()
        await pubsub.subscribe(self.settings["redis_channel"])
        try:
            async for item in pubsub.listen():
                if item.get("type") != "message":
                    continue
                try:
                    data = json.loads(item["data"])
                    await self.deliver(str(data["visitor"]), data["event"])
                except Exception:
                    log.exception("livechat: a bad event on the Redis channel")
        finally:
            await pubsub.aclose()
            await client.aclose()

    async def poll_database(self) -> None:
        """Without Redis: deliver messages written by other processes (agents' replies)."""
        from . import desk

        last = await self.call(_newest_message_id)
        since = await self.call(_database_now)  # agents' typing and reading after this
        told: dict[tuple[str, str], dict[str, Any]] = {}
        # Ids already handed out: the look-back window is re-read each time, but only a
        # message not seen before is loaded and rendered (a busy poll would starve the loop).
        dispatched: collections.OrderedDict[int, None] = collections.OrderedDict()
        while True:
            await asyncio.sleep(self.settings["poll_seconds"])
            if not self.visits:
                continue
            try:
                found, newest, loaded = await self.call(_messages_after, max(last - POLL_LOOKBACK, 0),
                                                set(self.visits), desk.message_event,
                                                frozenset(dispatched), pool=self.poll_pool)
            except Exception:
                log.exception("livechat: polling the database failed; trying again")
                continue
            last = max(last, newest)
            try:
                checked = await self.call(_database_now, pool=self.poll_pool)
                agents = await self.call(desk.agent_events_since, since, set(self.visits),
                                         pool=self.poll_pool)
                # A second of overlap: an event committed just before ``checked`` is read
                # twice rather than missed (the widget shows either once).
                since = checked - datetime.timedelta(seconds=1)
            except Exception:
                log.exception("livechat: reading agents' typing failed; trying again")
                agents = []
            for visitor, event in agents:
                key = (visitor, event["type"])
                if told.get(key) != event:  # the overlap reads some twice: tell them once
                    told[key] = event
                    await self.deliver(visitor, event)
            if len(told) > 20000:
                told.clear()
            # A visitor not connected now gets these by resuming, when they come back.
            dispatched.update(dict.fromkeys(loaded))
            for visitor, event in found:
                await self.deliver(visitor, event)
            while len(dispatched) > POLL_LOOKBACK * 10:
                dispatched.popitem(last=False)

    async def keep_presence(self) -> None:
        """Write who has the widget open, in batches: arrivals and departures each second,
        a renewal of everyone held here every ``desk.RENEW_SECONDS``."""
        from . import desk

        renewed = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            try:
                if time.monotonic() - renewed >= desk.RENEW_SECONDS:
                    renewed = time.monotonic()
                    self.arrived = set()
                    await self.call(desk.mark_present, list(self.visits), True)
                if self.arrived:
                    arrived, self.arrived = self.arrived, set()
                    await self.call(desk.mark_present, sorted(arrived), True)
                left = [v for v in self.left if v not in self.visits]
                self.left = set()
                if left:
                    await self.call(desk.mark_present, left, False)
            except Exception:
                log.exception("livechat: recording who is present failed; trying again")

    # -- one socket ------------------------------------------------------------------------

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        origin = request.headers.get("Origin")
        if origin is not None and _origin(origin) not in self.origins:
            return connection.respond(403, "This site may not embed the chat.\n")
        address = _address(connection, request, self.proxies)
        if self.per_address[address] >= self.settings["connections_per_address"]:
            return connection.respond(429, "Too many chat connections from this address.\n")
        return None

    async def handle(self, ws: ServerConnection) -> None:
        address = _address(ws, ws.request, self.proxies)
        self.per_address[address] += 1
        try:
            await self._converse(ws, address)
        except ConnectionClosed:
            pass
        except TimeoutError:
            await ws.close(4408, "idle")
        finally:
            self.per_address[address] -= 1
            if self.per_address[address] <= 0:
                del self.per_address[address]

    async def _converse(self, ws: ServerConnection, address: str) -> None:
        from . import desk, tokens

        idle = self.settings["idle_seconds"]
        hello = _parse(await asyncio.wait_for(ws.recv(), timeout=min(idle, 30)))
        if not hello or hello.get("type") != "hello":
            await ws.close(4400, "say hello first")
            return
        name = str(hello.get("name") or "")[:120]
        email = str(hello.get("email") or "")[:254] or None
        last_seen = _int(hello.get("last_seen"))
        token = hello.get("token")
        # One trip to the pool for the whole hello: a reconnect storm after a restart is
        # thousands of these at once.
        visitor, token, lang, greeting = await self.call(_identify, token, name,
                                                         hello.get("lang"), tokens, desk)
        if visitor is None:
            await ws.close(4401, "invalid token")
            return
        visit = Visit(ws, visitor, self.settings, last_seen)
        self.visits[visitor].add(visit)  # subscribed before the resume is read: nothing missed
        self.arrived.add(visitor)
        self.left.discard(visitor)
        try:
            await ws.send(json.dumps({"type": "welcome", "token": token, "lang": lang,
                                      "greeting": greeting}))
            outcome = await self.call(desk.resume, visitor, last_seen)
            visit.ready = True
            for event in outcome.events + visit.held:
                await visit.send(event)
            visit.held = []
            while True:
                data = _parse(await asyncio.wait_for(ws.recv(), timeout=idle))
                if data is None:
                    await visit.send({"type": "error", "code": "bad_frame"})
                    continue
                await self._act(visit, data, address, name, email, lang)
        finally:
            self.visits[visitor].discard(visit)
            if not self.visits[visitor]:
                del self.visits[visitor]
                self.arrived.discard(visitor)
                self.left.add(visitor)

    async def _act(self, visit: Visit, data: dict[str, Any], address: str, name: str,
                   email: str | None, lang: str) -> None:
        from . import bot, desk

        kind = data.get("type")
        visitor = visit.visitor
        if kind in ("message", "handover", "answer", "email", "rate", "end", "transcript"):
            bucket = self.address_buckets.setdefault(
                address, Bucket(self.settings["address_rate_per_minute"]))
            if not visit.bucket.take() or not bucket.take():
                await visit.send({"type": "error", "code": "rate",
                                  "client_id": data.get("client_id")})
                return
        if kind == "message":
            text = str(data.get("text") or "")
            client_id = str(data.get("client_id") or "")
            if not text.strip() or not client_id or len(client_id) > CLIENT_ID_MAX:
                await visit.send({"type": "error", "code": "invalid", "client_id": client_id})
                return
            if len(text) > self.settings["max_message"]:
                await visit.send({"type": "error", "code": "too_long", "client_id": client_id})
                return
            outcome = await self.call(desk.post, visitor, client_id, text, name=name,
                                      email=email, lang=lang)
            await visit.send(outcome.ack)  # committed: only now acknowledged
            await self.spread(visitor, outcome.events)
        elif kind in ("read", "delivered"):
            await self.call(desk.receipt, visitor, _int(data.get("id")), kind)
        elif kind == "typing":
            if time.monotonic() - visit.typing_at > 3:
                visit.typing_at = time.monotonic()
                await self.call(desk.typing, visitor)
        elif kind == "handover":
            await self.spread(visitor, (await self.call(desk.ask_for_person, visitor)).events)
        elif kind == "answer":
            events = await self.call(_answered, visitor, bool(data.get("solved")), bot, desk)
            await self.spread(visitor, events)
        elif kind == "email":
            outcome = await self.call(desk.leave_email, visitor, str(data.get("email") or ""))
            await self.spread(visitor, outcome.events)
        elif kind == "transcript":
            outcome = await self.call(desk.send_transcript, visitor, str(data.get("email") or ""))
            for event in outcome.events:
                await visit.send(event)
        elif kind == "rate":
            await self.call(desk.rate, visitor, _int(data.get("score")))
        elif kind == "end":
            await self.spread(visitor, (await self.call(desk.end_chat, visitor)).events)
        elif kind != "ping":
            await visit.send({"type": "error", "code": "unknown"})

    # -- running -----------------------------------------------------------------------------

    async def run(self, host: str, port: int, ready: Any = None) -> None:
        from . import desk

        self.stopping = asyncio.Event()
        helper = self.listen_redis() if self.redis_url else self.poll_database()
        helper_task = asyncio.create_task(helper)
        presence_task = asyncio.create_task(self.keep_presence())
        async with serve(self.handle, host, port, process_request=self.check_request,
                         compression=None, max_size=16 * 1024, max_queue=8,
                         ping_interval=30, ping_timeout=30, open_timeout=10) as server:
            if ready is not None:
                ready(server)
            await self.stopping.wait()
        # Every socket here is closed now: replies from here on go by email until the
        # widgets reconnect (to this process started again, or another).
        left = [v for v in self.left if v not in self.visits]
        if left:
            await self.call(desk.mark_present, left, False)
        helper_task.cancel()
        presence_task.cancel()
        self.pool.shutdown(wait=True)
        self.poll_pool.shutdown(wait=True)


def _identify(token: Any, name: str, lang: Any, tokens: Any,
              desk: Any) -> tuple[str | None, str, str, str]:
    """(visitor, token, language, greeting) for a hello; visitor None: the token is refused."""
    if token:
        visitor = tokens.visitor_of(token)
        if visitor is None:
            return None, "", "", ""
    else:
        visitor, token = tokens.new_visitor()
    lang = desk.language(lang)
    return visitor, token, lang, desk.greeting(name, lang)


def _answered(visitor: str, solved: bool, bot: Any, desk: Any) -> list[dict[str, Any]]:
    from .models import Chat

    chat = desk.current_chat(visitor)
    if chat is None:
        return []
    said = bot.answer_feedback(chat, solved)
    return ([desk.message_event(m, visitor) for m in said]
            + [desk.state_event(Chat.get_by_id(chat.id))])


def _database_now() -> datetime.datetime:
    from core.models import utcnow

    return utcnow()


def _newest_message_id() -> int:
    from core.models import Message

    row = Message.select(Message.id).order_by(Message.id.desc()).first()
    return row.id if row else 0


def _messages_after(after: int, visitors: set[str], render: Any,
                    dispatched: frozenset[int] = frozenset()
                    ) -> tuple[list[Any], int, list[int]]:
    """Public livechat messages after ``after`` for the visitors this process holds, leaving
    out those ``dispatched`` already; the newest id seen; the ids loaded this time."""
    from core.models import Message

    from .models import Chat

    public = ((Message.id > after) & (Message.channel == "livechat") & (~Message.is_internal)
              & (Message.notification == ""))
    ids = [row[0] for row in Message.select(Message.id).where(public).tuples()]
    newest = max(ids, default=after)
    fresh = [i for i in ids if i not in dispatched]
    if not fresh:
        return [], newest, []
    rows = (Message.select(Message, Chat.visitor, Chat.state.alias("chat_state"))
            .join(Chat, on=(Chat.ticket == Message.ticket))
            .where(Message.id.in_(fresh)).order_by(Message.id).objects())
    mine = [m for m in rows if m.visitor in visitors]
    from .desk import files_of

    files = files_of([m.id for m in mine])
    found = [(m.visitor, render(m, m.visitor, m.chat_state, files=files.get(m.id)))
             for m in mine]
    return found, newest, fresh


def _is_sqlite(database: Any) -> bool:
    import peewee

    return isinstance(getattr(database, "obj", database), peewee.SqliteDatabase)


def _origin(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower()


def client_address(remote: Any, forwarded_for: str | None, proxies: int) -> str:
    """The visitor's address, as the web side reads it (``LOKET_TRUSTED_PROXIES``).

    With no trusted proxy it is the connecting address. Behind ``proxies`` reverse
    proxies it is the entry the outermost of them wrote in X-Forwarded-For; entries
    before it come from the client and may be forged. A header with fewer entries than
    proxies (a request that bypassed them) counts as the connecting address.
    """
    if proxies and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return str(remote[0]) if remote else "?"


def _address(connection: ServerConnection, request: Request | None, proxies: int) -> str:
    forwarded = request.headers.get("X-Forwarded-For") if request is not None else None
    return client_address(connection.remote_address, forwarded, proxies)


def _parse(frame: Any) -> dict[str, Any] | None:
    if not isinstance(frame, str):
        return None
    try:
        data = json.loads(frame)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _int(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def run(app: Any, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then close the sockets (widgets reconnect and resume)."""
    import signal

    server = ChatServer(app)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(server.run(host, port, ready=lambda s: log.warning(
            "livechat: listening on %s:%s", host, port)))
        while server.stopping is None:
            await asyncio.sleep(0.01)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.stopping.set)
        await task

    asyncio.run(main())
