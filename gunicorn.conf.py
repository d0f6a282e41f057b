"""gunicorn settings for `loket serve` (and for running gunicorn by hand: gunicorn -c gunicorn.conf.py).

Read from the environment so one file serves every host:
LOKET_BIND, LOKET_WEB_WORKER, LOKET_WEB_WORKERS, LOKET_WEB_THREADS, LOKET_WEB_CONNECTIONS,
LOKET_ACCESS_LOG
(and LOKET_REQUEST_READ_SECONDS, read by the worker class in core/serving.py).
"""

import os

wsgi_app = "core:create_app()"

bind = [address.strip() for address in os.environ.get("LOKET_BIND", "127.0.0.1:8000").split(",")
        if address.strip()]

# The work is mostly database round trips, so a few processes with a few threads each keep
# the CPUs busy; past 8 processes memory grows faster than throughput.
workers = int(os.environ.get("LOKET_WEB_WORKERS") or min(2 * (os.cpu_count() or 1), 8))

# LOKET_WEB_WORKER: "buffered" (the default) or "sync".
#
# buffered: gthread's threads run the application (a sync worker is faster, but one slow
# client holds a whole process), and its event loop reads each request before a thread
# takes it (core/serving.py): clients that send slowly cannot hold the threads. gevent was
# measured too: its loop stalls whenever a worker waits on SQLite's writer lock. Figures in
# bench/README.md.
#
# sync: gunicorn's sync worker, closing a connection with nothing unread at once (it waited
# for the client to close its side too: core/serving.py). One request at a time a process,
# no threads, no hand-off from a loop to a thread: a
# submission at 1M tickets 12% less CPU in the median of four alternated pairs (-21 to -27%
# in three, +7% in one; bench/run.py --worker-class, README "Speed"), and no defence of its
# own against a client
# that sends or reads slowly, nor keep-alive. Only behind a reverse proxy that buffers whole
# requests and responses before it passes them on (nginx does by default:
# proxy_request_buffering and proxy_buffering on), as the README's deployment shows; a
# request running longer than ``timeout`` gets its worker killed.
WORKER_CLASSES = {"buffered": "core.serving.BufferingThreadWorker",
                  "sync": "core.serving.SyncWorker"}
_worker = (os.environ.get("LOKET_WEB_WORKER") or "buffered").strip().lower()
if _worker not in WORKER_CLASSES:
    raise SystemExit(f"LOKET_WEB_WORKER must be one of: {', '.join(WORKER_CLASSES)} "
                     f"(got {_worker!r})")
worker_class = WORKER_CLASSES[_worker]
# Two threads a worker: with the request already read, a thread only runs the app, and more
# threads in one process only take turns holding the interpreter. Measured on 2 cores, 2
# workers, 8-16 connections, side by side (bench/README.md): 2 threads against 4 gave the
# same or more requests/s and a lower p99 everywhere (console inbox at 1M tickets 25-33 ms
# against 35-40, API list 16 against 22, submissions 66-100 against 100-183 ms); 1 thread was
# no better than 2 and leaves a worker nothing while it sends a large download.
# A sync worker with more than one thread is gthread to gunicorn: it gets one.
threads = 1 if _worker == "sync" else int(os.environ.get("LOKET_WEB_THREADS") or 2)
# Most connections one worker holds at once (keep-alive ones included). A gthread
# worker accepts every pending connection it can, so a few long-lived connections
# (a reverse proxy's upstream pool, a load tester) can all land on one worker while
# the others idle; about 2 x threads spreads them. The default suits browsers
# connecting directly, whose idle keep-alive connections would otherwise fill it.
worker_connections = int(os.environ.get("LOKET_WEB_CONNECTIONS") or 1000)

# Off by default: a reverse proxy usually logs requests already. "-" logs to stdout.
accesslog = os.environ.get("LOKET_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOKET_LOG_LEVEL", "info")

timeout = 30  # a worker silent for this long is killed and replaced
graceful_timeout = 30  # on SIGTERM, requests in flight get this long to finish
keepalive = 5

# Recycle workers now and then, so a slow leak in any plugin cannot grow without bound. At
# 5,000 a busy worker restarted every 20 s or so, mid-benchmark; at 100,000 it is hours.
max_requests = 100_000
max_requests_jitter = 10_000

# gunicorn >= 25 opens a control socket at one fixed path in $HOME by default, which two
# instances on one host (web and a benchmark, say) would fight over; nothing here uses it.
control_socket_disable = True


def post_worker_init(worker):  # gunicorn calls it once the app is loaded
    """Templates compiled before the first request, not during it (core.serving.warm)."""
    from core.serving import warm

    warm(worker.wsgi)
