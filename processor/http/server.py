"""The HTTP server: routes, the token and method rules, and starting it next to a worker or on its own.

    app = build_app(settings, store, worker)          # for tests or an embedding runner
    handle = await start_http(settings, store, worker) # listening on settings.http_address (port 0: any)
    handle.port; await handle.close()

Endpoints (GET/HEAD only; any other method is 405):
    /healthz            liveness: 200 while the event loop answers
    /readyz             200 when the store answers the API's queries on both tables (probes.store_answers) and,
                        with a worker, its apply loop and consumer run;
                        503 {"ready": false, "reason": ...} otherwise
    /metrics            Prometheus text format (processor_*, process_*, python_* families; see metrics.py)
    /api/objects        ?source= &prefix= &type= &state.FIELD=VALUE &limit= (100, max 1000) &next=CURSOR
    /api/objects/{name} one object (names contain slashes); ?source= when several sources have it (else 409)
    /api/recent         the most recently updated objects (?limit=, max 100)
    /api/deadletters    ?limit= &after=ID (the previous page's `next`)
    /api/partitions     owner, checkpoint, last enqueued, lag per partition (cached 3 s)
    /api/summary        counters, stored counts (cached 2 s), reorder buffer, commits
    /api/objects/{name}/events  the object's history, when kept (?source=, ?limit=); see object_events.py
    /api/changes        ?after=POS &limit= &source= &prefix= &type= &state.FIELD=VALUE: the change feed, as JSON
                        pages or (Accept: text/event-stream) Server-Sent Events; see changes.py
    /api/history        the worker's last hour, sampled: rates, lag per partition, enqueue-to-commit latency
    /                   the dashboard (static/), refreshing itself every 2 s from /api/

Host: everything but the probes and /metrics answers only the host names of hosts.HostRule (IP addresses,
localhost, this machine, PROCESSOR_HTTP_ALLOWED_HOSTS), else 421: a DNS-rebinding page names its own host.

Connections (protocol.Limits): a request head must arrive within 10 s, an idle connection closes after 75 s,
and at 100 open connections the oldest is cut to admit a new one.

Token: when PROCESSOR_API_TOKEN (settings.api_token) is set, /api/* needs `Authorization: Bearer TOKEN`
(else 401 with WWW-Authenticate). Probes, /metrics and the page itself stay open; the page asks for the token
on a 401, or takes it from the address once: http://HOST:PORT/#token=TOKEN (a fragment never reaches the
server or its logs; the page keeps it in sessionStorage and removes it from the address bar).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from processor.config import Settings
from processor.http import api, changes, dashboard, metrics, object_events, probes, webhook
from processor.http.context import CONTEXT, Context
from processor.http.hosts import OPEN_PATHS, HostRule
from processor.http.jsonresp import json_error
from processor.http.protocol import LimitedSite, Limits
from processor.http.view import WorkerView
from processor.stores.base import ProjectionStore, StoreError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
READ_METHODS = ("GET", "HEAD")


def _authorized(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # compare_digest on bytes: constant time in the token's content, whatever it holds (a header that is not
    # UTF-8 arrives with surrogates, which must give a 401, not an encoding error).
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.encode())


@web.middleware
async def rules(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Our host names only (421; probes and /metrics answer any), read-only (405 for anything but GET/HEAD),
    the bearer token on /api/, and JSON errors under /api/."""
    is_api = request.path == "/api" or request.path.startswith("/api/")
    ctx = request.app[CONTEXT]
    if request.path not in OPEN_PATHS and not ctx.hosts.allows(request.headers.get("Host")):
        return json_error(
            421,
            "this server does not answer for that host name: add it to "
            "PROCESSOR_HTTP_ALLOWED_HOSTS (http.allowed_hosts)",
        )
    if request.method not in READ_METHODS:
        return json_error(
            405, f"{request.method} not allowed: this server only reads", headers={"Allow": ", ".join(READ_METHODS)}
        )
    token = ctx.settings.api_token
    if is_api and token and not _authorized(request, token):
        return json_error(
            401,
            "a bearer token is required (Authorization: Bearer TOKEN)",
            headers={"WWW-Authenticate": 'Bearer realm="processor"'},
        )
    try:
        return await handler(request)
    except api.ApiError as exc:
        return json_error(exc.status, str(exc))
    except web.HTTPException as exc:
        if is_api and exc.status >= 400:
            return json_error(exc.status, exc.reason)
        raise
    except StoreError as exc:
        # Its text can name a file or a database: logged, not answered.
        ctx.store_health.failed(request.path, exc)
        return json_error(503, "store unavailable")
    except Exception:
        if not is_api:
            raise
        log.exception("API request %s failed", request.path)
        return json_error(500, "internal error")


def build_app(settings: Settings, store: ProjectionStore, worker: WorkerView | None = None) -> web.Application:
    app = web.Application(middlewares=[rules])
    hosts = HostRule(settings.http_allowed_hosts, split_address(settings.http_address)[0])
    ctx = Context(settings, store, worker, hosts)
    app[CONTEXT] = ctx
    metrics.install(app, ctx)
    changes.install(app)
    webhook.install(app, settings, store)

    async def close_context(_app: web.Application) -> None:
        await ctx.close()

    app.on_cleanup.append(close_context)
    get = app.router.add_get
    get("/healthz", probes.healthz)
    get("/readyz", probes.readyz)
    get("/metrics", metrics.metrics)
    get("/api/objects", api.objects)
    get("/api/objects/{object:.+}/events", object_events.events)  # before the object itself: it matches both
    get("/api/objects/{object:.+}", api.one_object)
    get("/api/recent", api.recent)
    get("/api/deadletters", api.dead_letters)
    get("/api/partitions", api.partitions)
    get("/api/summary", api.summary)
    get("/api/changes", changes.changes)
    get("/api/history", api.history)
    get("/", dashboard.index)
    get("/static/{name}", dashboard.static)
    return app


@dataclass
class HttpHandle:
    runner: web.AppRunner
    host: str
    port: int
    site: LimitedSite

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self.site.gate.open) if self.site.gate else 0

    async def close(self) -> None:
        await self.runner.cleanup()


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


async def start_http(
    settings: Settings, store: ProjectionStore, worker: WorkerView | None = None, *, limits: Limits = Limits()
) -> HttpHandle:
    """Serve on settings.http_address (port 0 picks a free port: see handle.port) until handle.close()."""
    host, port = split_address(settings.http_address)
    runner = web.AppRunner(
        build_app(settings, store, worker),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=2.0,
        **limits.runner_options(),
    )
    await runner.setup()
    site = LimitedSite(runner, host, port, limits)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1] if runner.addresses else port
    handle = HttpHandle(runner, host, bound, site)
    if not settings.api_token and host not in ("127.0.0.1", "::1", "localhost"):
        log.warning(
            "the API serves the projection and dead-letter bodies to anyone who reaches %s: set "
            "PROCESSOR_API_TOKEN (probes and /metrics stay open)",
            handle.url,
        )
    log.info(
        "HTTP on %s (dashboard /, API /api/, metrics /metrics)%s",
        handle.url,
        "; /api/ needs the bearer token" if settings.api_token else "",
    )
    return handle
