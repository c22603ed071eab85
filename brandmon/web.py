"""Health and metrics pages for a brandmon Faust worker: /metrics, /live and /ready.

Ready means the app has started and its consumer holds at least one partition; a worker that
is waiting for a rebalance, or that has more peers than partitions, answers 503.
"""

from __future__ import annotations

import time
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from brandmon.metrics import Metrics


def consumer_ready(app: faust.App) -> tuple[bool, str]:
    if not app.started:
        return False, "the Faust app has not started"
    try:
        assigned = app.consumer.assignment()
    except Exception as exc:  # the consumer may be mid-rebalance: report it, never crash
        return False, f"consumer not ready: {exc!r}"
    if not assigned:
        return False, "no partitions assigned yet"
    return True, f"{len(assigned)} partitions assigned"


def add_pages(app: faust.App, metrics: Metrics, about: dict[str, str]) -> None:
    """Serve the metrics registry and the health checks on the app's web server."""
    started = time.monotonic()

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        body = generate_latest(metrics.registry)
        return web.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/live")
    async def live_page(web: Any, request: Any) -> Any:
        return web.json({"live": True, "uptime_seconds": round(time.monotonic() - started)})

    @app.page("/ready")
    async def ready_page(web: Any, request: Any) -> Any:
        ok, why = consumer_ready(app)
        return web.json({"ready": ok, "detail": why, **about}, status=200 if ok else 503)
