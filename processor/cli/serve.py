"""`processor serve`: the HTTP API and dashboard over an existing store, consuming nothing (read replicas)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from processor.config import load_settings

log = logging.getLogger("processor")


def cmd_serve(args: argparse.Namespace) -> int:
    from processor.http.server import start_http
    from processor.runtime import stop_on_signal
    from processor.stores.registry import open_store

    settings = load_settings(
        path=args.config, store_url=args.store, http_address=args.address, log_level=args.log_level
    )

    async def main() -> int:
        stop = asyncio.Event()
        stop_on_signal(stop)
        store = open_store(settings.store_url)
        await store.open()
        try:
            handle = await start_http(settings, store)
            try:
                print(
                    f"serving {handle.url}/ (API {handle.url}/api/objects, metrics {handle.url}/metrics); Ctrl-C stops",
                    file=sys.stderr,
                    flush=True,
                )
                await stop.wait()
            finally:
                await handle.close()
        finally:
            await store.close()
        return 0

    return asyncio.run(main())


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the HTTP API and dashboard over an existing store (no consuming)")
    p.add_argument("--store", help="projection store URL (overrides PROCESSOR_STORE_URL)")
    p.add_argument("--address", metavar="HOST:PORT", help="listen address (overrides PROCESSOR_HTTP_ADDRESS)")
    p.set_defaults(func=cmd_serve, stops_gracefully=True)  # SIGTERM handled from the start
