"""Language routing in the score stage, with fake detectors and models: each language goes to a
model that reads it, the rest are written unscored with a reason, and the order is kept."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from brandmon.contracts.posts import NO_MODEL_FOR_LANGUAGE, ScoredPost
from brandmon.metrics import Metrics
from brandmon.stream.language import LanguagePolicy
from brandmon.stream.routing import (
    UNDETERMINED_LANGUAGE,
    LanguageRouter,
    RegistryError,
    load_registry,
)
from brandmon.stream.scoring import BatchScorer, RawRecord
from brandmon.tools.fake_classifier import FakeClassifier

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


class TableRanker:
    """Ranks by the post's first word: 'fr ...' is French, 'xx ...' is unclear."""

    def rank(self, texts: Sequence[str], k: int = 1) -> list[list[tuple[str, float]]]:
        table = {"en": [("en", 0.99)], "fr": [("fr", 0.98)], "de": [("de", 0.97)]}
        return [table.get(text.split()[0], [("es", 0.4)]) for text in texts]


class NamedFake(FakeClassifier):
    def __init__(self, name: str, languages: list[str]) -> None:
        super().__init__()
        self.model_id, self.model_version = f"{name}@1", "1"
        self.manifest = SimpleNamespace(languages=languages)


def post(i: int, text: str, lang: str | None = None) -> RawRecord:
    body = {"id": f"p{i}", "text": text, "brand": "acme", "created_at": "2026-11-22T06:00:00Z"}
    if lang is not None:
        body["lang"] = lang
    return RawRecord("posts", 0, i, b"acme", json.dumps(body).encode(), timestamp=1.0)


def scorer(
    default: FakeClassifier, registry: dict[str, FakeClassifier], **policy: str
) -> tuple[BatchScorer, Metrics]:
    metrics = Metrics(CollectorRegistry())
    router = LanguageRouter(TableRanker(), LanguagePolicy(), metrics, registry, **policy)  # type: ignore[arg-type]
    return BatchScorer(default, metrics, clock=lambda: NOW, router=router), metrics


def test_each_language_is_scored_by_its_model_and_the_order_is_kept() -> None:
    english, french = NamedFake("en-model", ["en"]), NamedFake("fr-model", ["fr"])
    s, metrics = scorer(english, {"fr": french})
    records = [
        post(0, "en I love it"),
        post(1, "fr je déteste ça"),
        post(2, "en bad service, I hate it"),
        post(3, "de ich hasse es"),
        post(4, "fr j'adore"),
    ]
    result = s.score(records)
    assert english.calls == [2] and french.calls == [2]  # one call per model per batch
    got = [(p.id, p.lang, p.model_id) for _, p in result.scored]
    assert got == [
        ("p0", "en", "en-model@1"),
        ("p1", "fr", "fr-model@1"),
        ("p2", "en", "en-model@1"),
        ("p3", "de", ""),
        ("p4", "fr", "fr-model@1"),
    ]
    labels = [p.label for _, p in result.scored]
    assert labels[0] == "positive" and labels[2] == "negative"  # the English model's reading
    assert labels[1] is not None and labels[4] is not None
    german = result.scored[3][1]
    assert german.unscored_reason == NO_MODEL_FOR_LANGUAGE and german.scores is None
    assert german.lang_confidence == pytest.approx(0.97)
    assert [r.offset for r, _ in result.scored] == [0, 1, 2, 3, 4]
    sample = metrics.registry.get_sample_value
    assert sample("brandmon_language_posts_total", {"lang": "de", "model": "unscored"}) == 1
    assert sample("brandmon_language_posts_total", {"lang": "fr", "model": "fr-model@1"}) == 2


def test_fallback_scores_unread_languages_with_the_default_model() -> None:
    english = NamedFake("en-model", ["en"])
    s, _ = scorer(english, {}, no_model="fallback")
    result = s.score([post(0, "de ich hasse es")])
    (_, scored) = result.scored[0]
    assert (scored.lang, scored.model_id, scored.unscored_reason) == ("de", "en-model@1", None)


def test_undetermined_posts_follow_their_setting() -> None:
    english = NamedFake("en-model", ["en"])
    text = "xx something unclear"
    by_default, _ = scorer(english, {})
    assert by_default.score([post(0, text)]).scored[0][1].model_id == "en-model@1"
    strict, _ = scorer(english, {}, undetermined="unscored")
    scored = strict.score([post(0, text)]).scored[0][1]
    assert (scored.lang, scored.label, scored.unscored_reason) == (
        "und",
        None,
        UNDETERMINED_LANGUAGE,
    )


def test_the_producer_lang_is_kept_as_the_hint() -> None:
    english, french = NamedFake("en-model", ["en"]), NamedFake("fr-model", ["fr"])
    s, _ = scorer(english, {"fr": french})
    (_, scored) = s.score([post(0, "xx ambigu", lang="fr-FR")]).scored[0]
    assert (scored.lang, scored.lang_hint, scored.model_id) == ("fr", "fr-FR", "fr-model@1")


def test_unscored_records_round_trip_and_old_records_still_parse() -> None:
    english = NamedFake("en-model", ["en"])
    s, _ = scorer(english, {})
    (_, unscored) = s.score([post(0, "de ich hasse es")]).scored[0]
    again = ScoredPost.model_validate_json(unscored.model_dump_json())
    assert again == unscored and not again.scored
    old = {
        "id": "p1",
        "text": "great",
        "brand": "acme",
        "created_at": "2026-11-22T06:00:00Z",
        "lang": "en",
        "label": "positive",
        "scores": {"negative": 0.1, "neutral": 0.1, "positive": 0.8},
        "model_id": "m@1",
        "model_version": "1",
        "scored_at": "2026-11-22T06:00:01Z",
    }
    parsed = ScoredPost.model_validate(old)
    assert parsed.scored and parsed.lang == "en" and parsed.lang_confidence is None
    with pytest.raises(ValueError, match="unscored_reason"):
        ScoredPost.model_validate({**old, "label": None, "scores": None})


def test_a_registry_model_must_read_its_language(tiny_model_dir: Path) -> None:
    with pytest.raises(RegistryError, match="--languages fr"):
        load_registry({"fr": tiny_model_dir}, lambda path: FakeClassifier())
    loaded = load_registry({"en": tiny_model_dir}, lambda path: FakeClassifier())
    assert list(loaded) == ["en"]


class BrokenRanker:
    def rank(self, texts: Sequence[str], k: int = 1) -> list[list[tuple[str, float]]]:
        raise RuntimeError("detector crashed")


def test_a_failing_detector_routes_the_batch_as_undetermined_and_loses_nothing() -> None:
    """A detector error must not crash the worker (it would restart into the same batch):
    the batch is `und`, so by default the main model scores every post."""
    english = NamedFake("en-model", ["en"])
    metrics = Metrics(CollectorRegistry())
    router = LanguageRouter(BrokenRanker(), LanguagePolicy(), metrics, {})  # type: ignore[arg-type]
    s = BatchScorer(english, metrics, clock=lambda: NOW, router=router)
    result = s.score([post(0, "en I love it"), post(1, "fr j'adore")])
    assert [(p.id, p.lang, p.model_id) for _, p in result.scored] == [
        ("p0", "und", "en-model@1"),
        ("p1", "und", "en-model@1"),
    ]
    assert result.dead == []
