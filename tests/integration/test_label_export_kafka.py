"""`brandmon label export --from-topic` reads posts.scored on a real broker: the valid
records up to --max-read, invalid ones skipped and counted, and no consumer group moved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from brandmon.cli import app
from brandmon.kafka_io import JsonProducer, ensure_topics
from brandmon.settings import Settings
from tests.model_export.labeling.posts import scored

pytestmark = [pytest.mark.kafka]


def test_export_from_the_scored_topic(
    test_settings: Settings, topic_env: dict[str, str], tmp_path: Path
) -> None:
    topic = test_settings.topic_scored
    ensure_topics(test_settings, [topic], partitions=1)
    producer = JsonProducer(test_settings)
    producer.send(topic, b"{not json", key="acme")
    for i in range(5):
        post = scored(f"k{i}", f"kafka post {i} about widget {i * 11}", (0.4, 0.2, 0.4))
        producer.send(topic, post.model_dump_json().encode(), key="acme")
    producer.flush()

    env = {**topic_env, "BRANDMON_LABEL_STUDIO_DATA_DIR": str(tmp_path / "none")}
    args = ["label", "export", "--from-topic", "--max-read", "4", "--timeout", "30"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "t.json")], env=env)
    assert result.exit_code == 0, result.output
    tasks = json.loads((tmp_path / "t.json").read_text())
    assert sorted(t["data"]["post_id"] for t in tasks) == ["k0", "k1", "k2", "k3"]
    assert "read 4 scored posts" in result.output
    assert "skipped 1 invalid records" in result.output
