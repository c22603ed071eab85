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


def wait_ready(proc: Any, port: int, log: Any, timeout: float = 120.0) -> None:
    """Poll a child worker's /ready on 127.0.0.1:`port` until it answers 200.

    Raises RuntimeError naming `log` when the process exits or `timeout` seconds pass.
    """
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited (code {proc.returncode}); see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the worker was not ready within {timeout:.0f} s; see {log}")
