"""The Faust app's consumer reads committed records only (issue 19), without a broker: the
aiokafka consumer Faust builds for a worker is set to read_committed before it starts.
tests/integration/test_read_committed_kafka.py shows the workers skip aborted records on the
real broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

from brandmon.faust_app import create_app
from brandmon.settings import Settings


def test_the_workers_consumer_reads_committed_records_only(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))

    async def isolation_level() -> str:
        thread = app.consumer._new_consumer_thread()
        consumer = thread._create_worker_consumer(app.transport)
        await consumer.stop()  # never started: closes its client
        return str(consumer._isolation_level)

    assert asyncio.run(isolation_level()) == "read_committed"
