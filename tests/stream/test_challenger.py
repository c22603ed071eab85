"""A challenger beside the champion, without a broker: the brand split, shadow pairs, the
agreement counts, the policy on a failing challenger, and the settings that refuse to start."""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from typer.testing import CliRunner

from brandmon.cli import app
from brandmon.contracts.classifier import Probabilities
from brandmon.metrics import Metrics
from brandmon.settings import Settings
from brandmon.stream.agent import ScoreOutputs
from brandmon.stream.challenger import (
    Challenger,
    brand_bucket,
    count_comparisons,
    role_of,
    scored_by_challenger,
)
from brandmon.stream.classifier import load_classifier
from brandmon.stream.rollout import ChallengerError, ModelRollout, load_challenger
from brandmon.stream.scoring import BatchScorer, RawRecord
from brandmon.tools.fake_classifier import FakeClassifier

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
BRANDS = ("acme", "globex", "initech", "umbrella", "hooli", "oscorp")
load = functools.partial(load_classifier, threads=1)


class Challenging(FakeClassifier):
    """Another fake model: reads every 'bad' text as positive, so the two disagree there."""

    model_id = "challenger@1"
    model_version = "1"

    def __init__(self, fail: str | None = None) -> None:
        super().__init__(negative_words=("awful",), positive_words=("good", "bad"))
        self.fail = fail

    def predict_proba(self, texts: Sequence[str]) -> Probabilities:
        if self.fail == "raise":
            self.calls.append(len(texts))
            raise RuntimeError("the challenger is broken")
        probs = super().predict_proba(texts)
        return probs[:-1] if self.fail == "short" else probs  # one row missing


def raw(offset: int, brand: str, text: str) -> RawRecord:
    value = {"id": f"p{offset}", "text": text, "brand": brand, "created_at": "2026-12-02T08:00Z"}
    return RawRecord("posts", 0, offset, brand.encode(), json.dumps(value).encode(), 1.0)


def batch() -> list[RawRecord]:
    texts = ("bad service", "good food", "a question", "awful", "bad again")
    return [
        raw(i, BRANDS[i % len(BRANDS)], texts[i % len(texts)]) for i in range(3 * len(BRANDS) + 1)
    ] + [RawRecord("posts", 0, 99, b"x", b"not json", 1.0)]


def scorer(
    mode: str | None, share: float = 0.5, fail: str | None = None
) -> tuple[BatchScorer, Challenging, Metrics]:
    metrics = Metrics(CollectorRegistry())
    s = BatchScorer(FakeClassifier(), metrics, clock=lambda: NOW)
    challenger = Challenging(fail=fail)
    if mode is not None:
        s.challenger = Challenger(challenger, mode, share, Path("/models/b"))  # type: ignore[arg-type]
    return s, challenger, metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


# -- the brand split ---------------------------------------------------------------------


def test_the_brand_bucket_is_a_fixed_function_of_the_brand() -> None:
    # sha256-based, so the same in every process and after restarts (Python's hash() is not)
    assert brand_bucket("acme") == pytest.approx(0.50847170816974)
    assert brand_bucket("oscorp") == pytest.approx(0.00663709388428)
    assert [scored_by_challenger(b, 0.4) for b in ("acme", "globex", "initech")] == [
        False,
        True,
        True,
    ]


@pytest.mark.parametrize("share", [0.0, 0.05, 0.3, 0.5, 1.0])
def test_the_challenger_gets_its_share_of_brands(share: float) -> None:
    brands = [f"brand-{i}" for i in range(20_000)]
    picked = sum(scored_by_challenger(b, share) for b in brands) / len(brands)
    assert picked == pytest.approx(share, abs=0.015)
    if share in (0.0, 1.0):
        assert picked == share


@given(st.text(min_size=1, max_size=40), st.floats(0, 1), st.floats(0, 1))
def test_a_larger_share_only_adds_brands(brand: str, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert 0 <= brand_bucket(brand) < 1
    if scored_by_challenger(brand, low):
        assert scored_by_challenger(brand, high)


# -- shadow mode -------------------------------------------------------------------------


def test_without_a_challenger_nothing_changes() -> None:
    s, challenger, _ = scorer(None)
    result = s.score(batch())
    assert challenger.calls == [] and result.shadow == [] and result.challenger_model is None
    assert {p.model_id for _, p in result.scored} == {"fake@0"}


def test_shadow_mode_pairs_every_scored_post_with_the_challengers_record() -> None:
    s, challenger, metrics = scorer("shadow")
    records = batch()
    result = s.score(records)
    assert len(result.scored) == len(records) - 1 and len(result.dead) == 1
    assert challenger.calls == [len(records) - 1]  # one call for the batch
    assert [p.id for _, p in result.scored] == [pair.shadow.id for _, pair in result.shadow]
    for (record, champion), (shadow_record, pair) in zip(result.scored, result.shadow, strict=True):
        assert shadow_record is record and pair.champion is champion
        assert (champion.model_id, pair.shadow.model_id) == ("fake@0", "challenger@1")
        assert pair.shadow.model_version == "1"
        assert pair.shadow.model_dump(include={"text", "brand", "created_at"}) == (
            champion.model_dump(include={"text", "brand", "created_at"})
        )
    assert result.challenger_model == ("challenger@1", "1")

    outputs = ScoreOutputs(Settings(topic_scored_shadow="shadow-t")).__call__(result)
    shadow = [o for o in outputs if o.topic == "shadow-t"]
    assert len(shadow) == len(result.scored)
    assert {json.loads(o.value)["id"] for o in shadow} == {p.id for _, p in result.scored}
    assert all(o.key == json.loads(o.value)["brand"].encode() for o in shadow)
    assert sample(metrics, "brandmon_batch_stage_seconds_count", stage="challenger") == 1


def test_agreement_is_counted_by_both_labels() -> None:
    s, _, metrics = scorer("shadow")
    result = s.score(batch())
    count_comparisons(metrics, (pair for _, pair in result.shadow))
    name = "brandmon_shadow_comparisons_total"
    # "bad ..." posts: negative for the champion, positive for the challenger
    bad = sum(p.text.startswith("bad") for _, p in result.scored)
    assert bad > 0
    assert (
        sample(
            metrics,
            name,
            champion_label="negative",
            challenger_label="positive",
            agreement="disagree",
        )
        == bad
    )
    agree = sum(
        sample(metrics, name, champion_label=label, challenger_label=label, agreement="agree")
        for label in ("negative", "neutral", "positive")
    )
    assert agree == len(result.scored) - bad


@pytest.mark.parametrize("fail", ["raise", "short"])
def test_a_failing_challenger_costs_the_champion_nothing_in_shadow_mode(fail: str) -> None:
    s, challenger, metrics = scorer("shadow", fail=fail)
    records = batch()
    result = s.score(records)
    assert challenger.calls == [len(records) - 1]  # tried once, not retried
    assert len(result.scored) == len(records) - 1 and result.shadow == []
    assert sample(metrics, "brandmon_challenger_errors_total", mode="shadow") == 1
    assert sample(metrics, "brandmon_inference_retries_total") == 0


def test_a_post_dead_lettered_on_the_scored_topic_has_no_shadow_record() -> None:
    s, _, _ = scorer("shadow")
    result = s.score([raw(0, "acme", "fine"), raw(1, "acme", "good")])
    champion = result.scored[0][1]
    # a champion record that cannot be written (as a lone surrogate would make it)
    broken = champion.model_copy(update={"text": "\ud800"})
    result.scored[0] = (result.scored[0][0], broken)
    outputs = ScoreOutputs(Settings(topic_scored_shadow="shadow-t"))(result)
    assert [json.loads(o.value)["id"] for o in outputs if o.topic == "shadow-t"] == ["p1"]
    assert [p.id for _, pair in result.shadow for p in (pair.shadow,)] == ["p1"]


# -- split mode --------------------------------------------------------------------------


def test_split_mode_scores_each_brand_with_the_model_its_hash_picks() -> None:
    s, _, _ = scorer("split", share=0.4)
    records = batch()
    result = s.score(records)
    assert len(result.scored) == len(records) - 1 and result.shadow == []
    by_brand: dict[str, set[str]] = {}
    for _, post in result.scored:
        by_brand.setdefault(post.brand, set()).add(post.model_id)
    expected = {b: {"challenger@1" if scored_by_challenger(b, 0.4) else "fake@0"} for b in by_brand}
    assert by_brand == expected
    assert {"challenger@1"} in expected.values() and {"fake@0"} in expected.values()
    # each brand keeps its input order
    for brand in by_brand:
        offsets = [r.offset for r, p in result.scored if p.brand == brand]
        assert offsets == sorted(offsets)
    roles = {role_of(p, result.challenger_model) for _, p in result.scored}
    assert roles == {"champion", "challenger"}


@pytest.mark.parametrize("fail", ["raise", "short"])
def test_a_failing_challenger_in_split_mode_hands_its_brands_to_the_champion(fail: str) -> None:
    s, _, metrics = scorer("split", share=0.4, fail=fail)
    records = batch()
    result = s.score(records)
    assert len(result.scored) == len(records) - 1
    assert {p.model_id for _, p in result.scored} == {"fake@0"}
    assert sample(metrics, "brandmon_challenger_errors_total", mode="split") == 1


# -- settings and loading ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"challenger_share": 0.2}, "BRANDMON_CHALLENGER_SHARE set but BRANDMON_CHALLENGER_PATH"),
        ({"challenger_mode": "split"}, "BRANDMON_CHALLENGER_MODE set but"),
        (
            {"challenger_path": "/m", "challenger_share": 0.2},
            "applies to BRANDMON_CHALLENGER_MODE=split only",
        ),
        ({"topic_scored_shadow": "posts.scored"}, "BRANDMON_TOPIC_SCORED_SHADOW"),
        ({"topic_scored_shadow": "alerts"}, "a topic brandmon already uses"),
        (
            {"challenger_path": "/m", "challenger_mode": "split", "challenger_share": 1.5},
            "less than or equal to 1",
        ),
        ({"challenger_path": "/m", "challenger_mode": "both"}, "shadow"),
    ],
)
def test_settings_refuse_combinations_that_make_no_sense(given: dict, says: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**given)
    assert says in str(info.value)


def test_settings_accept_a_challenger_in_either_mode() -> None:
    assert Settings(challenger_path="/m").challenger_mode == "shadow"
    split = Settings(challenger_path="/m", challenger_mode="split", challenger_share=0.25)
    assert split.challenger_share == 0.25


def test_the_challenger_is_validated_like_a_promoted_model(
    tiny_model_dir: Path, tiny_model_b_dir: Path, tmp_path: Path
) -> None:
    champion = load(tiny_model_dir)

    def challenger_of(path: Path, **extra: object) -> Challenger | None:
        settings = Settings(challenger_path=path, **extra)  # type: ignore[arg-type]
        return load_challenger(settings, load, tiny_model_dir, champion)

    assert load_challenger(Settings(), load, tiny_model_dir, champion) is None
    loaded = challenger_of(tiny_model_b_dir, challenger_mode="split", challenger_share=0.3)
    assert loaded is not None and (loaded.mode, loaded.share) == ("split", 0.3)
    assert loaded.model == (loaded.classifier.model_id, loaded.classifier.model_version)
    with pytest.raises(ChallengerError, match="the champion's own folder"):
        challenger_of(tiny_model_dir)
    with pytest.raises(ChallengerError, match="like the champion"):
        challenger_of(shutil.copytree(tiny_model_dir, tmp_path / "same"))
    tampered = shutil.copytree(tiny_model_b_dir, tmp_path / "tampered")
    with (tampered / "tokenizer.json").open("a") as fh:
        fh.write(" ")
    with pytest.raises(ChallengerError, match=r"refused \(bad_checksum\).*tokenizer.json"):
        challenger_of(tampered)
    with pytest.raises(
        ChallengerError, match=r"BRANDMON_CHALLENGER_PATH .*nowhere is not a folder"
    ):
        challenger_of(tmp_path / "nowhere")


def test_the_rollout_shows_the_challenger_in_model_info_and_ready() -> None:
    s, challenger, metrics = scorer(None)
    rollout = ModelRollout(s, metrics, Path("/models/a"), load)
    rollout.set_challenger(Challenger(challenger, "split", 0.2, Path("/models/b")))
    info = "brandmon_model_info"
    assert sample(metrics, info, model_id="challenger@1", model_version="1", role="challenger",
                  provider="none") == 1  # fmt: skip
    assert rollout.about()["challenger"]["share"] == 0.2
    assert s.challenger is not None
    rollout.set_challenger(None)
    assert s.challenger is None and rollout.about()["challenger"] is None
    assert metrics.registry.get_sample_value(
        info, {"model_id": "challenger@1", "model_version": "1", "role": "challenger",
               "provider": "none"}
    ) is None  # fmt: skip


# -- at run time ---------------------------------------------------------------------------


def test_a_challenger_is_set_refused_cleared_and_dropped_when_promoted(
    tiny_model_dir: Path, tiny_model_b_dir: Path, tmp_path: Path
) -> None:
    metrics = Metrics(CollectorRegistry())
    s = BatchScorer(load(tiny_model_dir), metrics)
    rollout = ModelRollout(s, metrics, tiny_model_dir, load)
    b_id = load(tiny_model_b_dir).model_id

    def changes(outcome: str) -> float:
        return sample(metrics, "brandmon_challenger_changes_total", outcome=outcome)

    async def scenario() -> None:
        done = await rollout.change_challenger(tiny_model_b_dir, "split", 0.3, "alice", "test")
        assert done.outcome == "set" and s.challenger is not None
        assert (s.challenger.classifier.model_id, s.challenger.share) == (b_id, 0.3)
        # a refused folder leaves the challenger it had
        same = await rollout.change_challenger(
            shutil.copytree(tiny_model_dir, tmp_path / "same"), "shadow", 0.1, "bob", "test"
        )
        assert same.outcome == "same_as_champion" and s.challenger.classifier.model_id == b_id
        assert rollout.about()["last_challenger_change"]["requested_by"] == "bob"
        cleared = await rollout.change_challenger(None, "shadow", 0.1, "alice", "test")
        assert cleared.outcome == "cleared" and s.challenger is None
        # promoting the challenger's model makes it the champion and drops the challenger
        await rollout.change_challenger(tiny_model_b_dir, "shadow", 0.1, "alice", "test")
        assert (await rollout.promote(tiny_model_b_dir, "alice", "test")).outcome == "promoted"
        assert s.challenger is None and s.classifier.model_id == b_id
        assert rollout.about()["challenger"] is None

    asyncio.run(scenario())
    rollout.close()
    assert (changes("set"), changes("same_as_champion"), changes("cleared")) == (2, 1, 1)
    roles = [
        sample_labels["role"]
        for family in metrics.registry.collect()
        if family.name == "brandmon_model_info"
        for sample_labels in (smp.labels for smp in family.samples)
    ]
    assert roles == ["champion"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([], "give the challenger's model FOLDER, or --clear"),
        (["{model}", "--clear"], "not both"),
        (["{model}", "--mode", "both"], "give shadow or split"),
        (["{model}", "--share", "0.2"], "--share applies to --mode split only"),
        (["{model}", "--mode", "split", "--share", "2"], "from 0 to 1"),
        (["{empty}"], "has no manifest.json"),
    ],
)
def test_the_challenger_command_refuses_bad_arguments(
    args: list[str], says: str, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "manifest.json").write_text("{}")
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = [a.format(model=model, empty=empty) for a in args]
    result = CliRunner().invoke(app, ["model", "challenger", *argv])
    assert result.exit_code == 2, result.output
    # rich draws the message in a box whose lines wrap where the (temporary) path ends
    flat = " ".join(result.output.replace("│", " ").split())
    assert says in flat, result.output
