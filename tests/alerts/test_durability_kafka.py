"""The alert worker's state survives SIGKILL (issue 8, item 5), on the real broker.

Ten times over, a brand's spike is produced, the test waits for its trigger on `alerts` and
SIGKILLs the alert worker the moment the trigger appears, then starts a new one. In the end
every brand has exactly one incident: one trigger (plus at most one escalation to a higher
severity), one resolve, one `dedup_key`
(replayed copies of a record keep their `alert_id`, which consumers dedup on)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from brandmon.kafka_io import JsonProducer, ensure_topics
from brandmon.settings import Settings
from tests.alerts.streams import traffic
from tests.helpers import WorkerProcess, read_topic

#: Alert severities in escalation order.
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROUNDS = 10


def _produce(settings: Settings, posts: list) -> None:  # type: ignore[type-arg]
    producer = JsonProducer(settings)
    for p in posts:
        producer.send(settings.topic_scored, p.model_dump_json().encode(), key=p.brand)
    producer.flush()


def _alerts(settings: Settings, done) -> list[dict]:  # type: ignore[no-untyped-def, type-arg]
    records = read_topic(
        settings, settings.topic_alerts, timeout=120, until=lambda got: done(_values(got))
    )
    return _values(records)


def _values(records: list) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(r.value) for r in records if r.value]


def test_sigkill_right_after_each_trigger_gives_one_trigger_and_one_resolve(
    test_settings: Settings, alert_worker_factory: Any
) -> None:
    settings = test_settings
    ensure_topics(settings, [settings.topic_scored, settings.topic_alerts])
    brands = [f"brand{k}" for k in range(ROUNDS)]
    workers: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        # the share rule's incident across kills, so the surge rule is off: each brand's calm
        # traffic comes after ~100 silent minutes, which the surge level decays over; the
        # surge rule's state round trip is tested in tests/alerts/test_surge.py
        worker = alert_worker_factory(
            BRANDMON_ALERTS__QUIET_SECONDS="180", BRANDMON_ALERTS__SURGE_ENABLED="false"
        )
        workers.append(worker)
        return worker

    try:
        for k, brand in enumerate(brands):
            worker = start()
            # a spike of a new brand (warm-up rule), ten event-time minutes after the last
            _produce(settings, traffic(range(k * 10, k * 10 + 3), 100, 0.6, brand=brand))

            def triggered(got: list[dict], brand: str = brand, worker: WorkerProcess = worker):  # type: ignore[type-arg]
                assert worker.alive(), worker.log()[-3000:]
                return any(a["brand"] == brand and a["action"] == "trigger" for a in got)

            _alerts(settings, triggered)
            worker.kill()  # SIGKILL the moment the trigger is on the topic

        # calm traffic for every brand, later than everything: each incident resolves
        calm = [p for b in brands for p in traffic(range(105, 112), 60, 0.05, brand=b)]
        _produce(settings, calm)
        final = start()

        def resolved(got: list[dict]) -> bool:  # type: ignore[type-arg]
            assert final.alive(), final.log()[-3000:]
            return {a["brand"] for a in got if a["action"] == "resolve"} == set(brands)

        got = _alerts(settings, resolved)
    finally:
        for worker in workers:
            worker.kill()  # the fixture would only at the end of the test

    by_brand: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for alert in got:
        if alert["action"] in {"trigger", "resolve"}:
            by_brand[alert["brand"]][alert["action"]].add(alert["alert_id"])
            by_brand[alert["brand"]]["dedup_key"].add(alert["dedup_key"])
    for brand in brands:
        seen = by_brand[brand]
        trail = [
            (a["action"], a["severity"], a["evaluated_at"], a["alert_id"][:6])
            for a in got
            if a["brand"] == brand
        ]
        # one incident: its first trigger, at most one escalation (a later trigger with a
        # higher severity, e.g. warning -> critical when the next minute is worse), never a
        # second page at the same severity; a replayed event keeps its alert_id
        first_seen: dict[str, str] = {}
        for a in got:
            if a["brand"] == brand and a["action"] == "trigger":
                first_seen.setdefault(a["alert_id"], a["severity"])
        ranks = [SEVERITY_RANK[severity] for severity in first_seen.values()]
        assert 1 <= len(ranks) <= 2, (brand, trail)
        assert ranks == sorted(set(ranks)), (brand, trail)
        assert len(seen["resolve"]) == 1, (brand, trail)
        assert len(seen["dedup_key"]) == 1, (brand, seen)
