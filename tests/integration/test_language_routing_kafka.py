"""Language routing on the real broker: a `brandmon worker` with the tiny English model as its
model and a tiny French model in BRANDMON_LANG_MODELS scores each language with its model and
writes German posts (no model reads German) unscored, with their reason."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from brandmon.contracts.manifest import load_manifest
from brandmon.kafka_io import JsonProducer
from tests.helpers import post, read_topic, values

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

TEXTS = {
    "en": [
        "worst customer service ever, never buying again",
        "honestly the best headphones I've owned",
        "they charged me twice and support keeps hanging up on me",
    ],
    "fr": [
        "pire service client de ma vie, plus jamais",
        "ils m'ont débité deux fois et le support me raccroche au nez",
        "très déçue de la qualité, cassé au bout d'une semaine",
    ],
    "de": [
        "total enttäuscht von der qualität, nach einer woche kaputt",
        "der paketbote hat meinen karton über den zaun geworfen",
    ],
}


def test_each_language_is_scored_by_its_model_and_unread_ones_are_unscored(
    test_settings, worker_factory, tiny_model_dir, tiny_model_fr_dir
):
    english, french = load_manifest(tiny_model_dir), load_manifest(tiny_model_fr_dir)
    worker = worker_factory(BRANDMON_LANG_MODELS=json.dumps({"fr": str(tiny_model_fr_dir)}))
    worker.wait_ready()
    posts, want = [], {}
    for n in range(4):  # several batches' worth, languages interleaved
        for lang, texts in TEXTS.items():
            for text in texts:
                item = post(len(posts), brand=("acme", "globex")[n % 2], text=f"{text} {n}")
                posts.append(item)
                want[item["id"]] = lang
    producer = JsonProducer(test_settings)
    for item in posts:
        producer.send(test_settings.topic_posts, item, key=str(item["brand"]))
    producer.flush()

    scored = values(read_topic(test_settings, test_settings.topic_scored, len(posts), timeout=120))
    assert sorted(p["id"] for p in scored) == sorted(want)  # every post, once
    models = {"en": english.model_id, "fr": french.model_id, "de": ""}
    for out in scored:
        lang = want[out["id"]]
        assert (out["lang"], out["model_id"]) == (lang, models[lang]), out
        assert out["lang_confidence"] >= 0.7
        if lang == "de":
            assert out["label"] is None and out["scores"] is None
            assert out["unscored_reason"] == "no_model_for_language"
        else:
            assert out["label"] in {"negative", "neutral", "positive"}
    assert Counter(want.values()) == Counter(p["lang"] for p in scored)
    assert worker.metric("brandmon_language_posts_total", lang="de", model="unscored") == 8
    assert worker.metric("brandmon_language_posts_total", lang="fr", model=french.model_id) == 12
    # a brand's posts still come out in the order they went in
    for brand in ("acme", "globex"):
        sent = [p["id"] for p in posts if p["brand"] == brand]
        assert [p["id"] for p in scored if p["brand"] == brand] == sent


def test_a_registry_model_that_does_not_read_its_language_stops_the_start(
    test_settings, worker_factory, tiny_model_dir
):
    worker = worker_factory(BRANDMON_LANG_MODELS=json.dumps({"fr": str(tiny_model_dir)}))
    assert worker.proc is not None and worker.proc.wait(60) != 0
    assert "--languages fr" in worker.log()
