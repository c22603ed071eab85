"""Health and metrics pages for a brandmon Faust worker: /metrics, /live and /ready.

Ready means all of:
- the app has started and its consumer holds at least one partition;
- no agent is stalled: an agent that has acked nothing for `stall_seconds` while its
  partitions have records waiting (consumer lag, measured against the group's committed
  offsets every LAG_INTERVAL seconds) is stalled, and `brandmon_agent_stalled` says so;
- every extra check the worker adds (e.g. the notifier dispatcher's loop is alive).

An agent that crashes ends the process (brandmon/batches.py), so /live and /ready stop
answering and Prometheus sees the target down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from brandmon.batches import Progress
from brandmon.broker_probe import BrokerProbe
from brandmon.kafka_io import admin
from brandmon.metrics import Metrics
from brandmon.settings import Settings

log = logging.getLogger(__name__)

#: How often consumer lag is measured; Prometheus scrapes every 15 s by default.
LAG_INTERVAL = 5.0

Check = Callable[[], tuple[bool, str]]


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


def measure_lag(
    settings: Settings, group: str, topic: str, client: Any | None = None
) -> dict[int, int]:
    """End offset minus the group's committed offset for each partition of `topic`."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

    client = client or admin(settings)
    partitions = client.list_topics(topic, timeout=5).topics[topic].partitions
    tps = [TopicPartition(topic, p) for p in partitions]
    ends = client.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=5)
    request = [ConsumerGroupTopicPartitions(group, tps)]
    committed = client.list_consumer_group_offsets(request, request_timeout=5)[group].result()
    done = {tp.partition: tp.offset for tp in committed.topic_partitions}
    lag: dict[int, int] = {}
    for tp, future in ends.items():
        end = future.result().offset
        start = done.get(tp.partition, -1)
        lag[tp.partition] = end - (start if start >= 0 else 0)
    return lag


class Health:
    """What /ready answers, from the consumer, the agents' progress and the lag monitor."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        metrics: Metrics,
        *,
        group: str,
        topic: str,
        agents: Sequence[Progress],
        checks: Sequence[Check] = (),
        about: dict[str, str] | None = None,
        details: Callable[[], dict[str, Any]] | None = None,
        publish_lag: bool = True,
    ) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics
        self.group = group
        self.topic = topic
        self.agents = list(agents)
        self.checks = list(checks)
        self.about = about or {}
        #: Fields of /ready's JSON that change while the worker runs (e.g. the active model).
        self.details = details
        self.publish_lag = publish_lag
        self.lag: dict[int, int] = {}

    def waiting(self) -> int:
        """Records waiting on this worker's partitions of the input topic."""
        try:
            mine = {tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.topic}
        except Exception:  # not started or mid-rebalance: nothing is assigned
            return 0
        return sum(self.lag.get(p, 0) for p in mine)

    def stalled(self, progress: Progress) -> bool:
        return progress.idle_seconds() > self.settings.stall_seconds and self.waiting() > 0

    def ready(self) -> tuple[bool, str]:
        ok, why = consumer_ready(self.app)
        if not ok:
            return ok, why
        for progress in self.agents:
            if progress.crashed:
                return False, f"agent {progress.name} crashed: {progress.crashed}"
            if self.stalled(progress):
                return False, (
                    f"agent {progress.name} has acked nothing for "
                    f"{progress.idle_seconds():.0f} s while {self.waiting()} records wait"
                )
        for check in self.checks:
            ok, detail = check()
            if not ok:
                return False, detail
        return True, why

    def refresh(self, lag: dict[int, int]) -> None:
        self.lag = lag
        for partition, value in lag.items() if self.publish_lag else ():
            self.metrics.consumer_lag.labels(topic=self.topic, partition=str(partition)).set(value)
        for progress in self.agents:
            self.metrics.agent_idle_seconds.labels(agent=progress.name).set(
                round(progress.idle_seconds(), 1)
            )
            self.metrics.agent_stalled.labels(agent=progress.name).set(int(self.stalled(progress)))


def add_health(health: Health) -> None:
    """Serve /metrics, /live and /ready, and measure lag every LAG_INTERVAL seconds."""
    app, metrics = health.app, health.metrics
    started = time.monotonic()
    probe = BrokerProbe(health.settings)  # aiokafka, never librdkafka: see brandmon.broker_probe

    async def close_probe(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        await probe.close()  # its clients would otherwise be left unclosed at exit

    app.on_before_shutdown.connect(close_probe)  # type: ignore[arg-type]  # mode types the handler too narrowly

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # rendering thousands of series takes a while: keep it off the event loop
        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(None, generate_latest, metrics.registry)
        return web.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/live")
    async def live_page(web: Any, request: Any) -> Any:
        return web.json({"live": True, "uptime_seconds": round(time.monotonic() - started)})

    @app.page("/ready")
    async def ready_page(web: Any, request: Any) -> Any:
        ok, why = health.ready()
        about = {"group": health.group, "input_topic": health.topic, **health.about}
        if health.details is not None:
            about.update(health.details())
        return web.json({"ready": ok, "detail": why, **about}, status=200 if ok else 503)

    @app.timer(LAG_INTERVAL)
    async def lag_monitor() -> None:
        try:
            lag = await probe.lag(health.group, health.topic)
        except Exception as exc:  # a failed measurement keeps the last values; never stops work
            log.warning("could not measure consumer lag of %s: %r", health.topic, exc)
            lag = health.lag
        health.refresh(lag)


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
