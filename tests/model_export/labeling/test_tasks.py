"""Label Studio's formats: the labeling config, pre-annotated tasks, reading an export."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from brandmon.model_export.labeling.select import Candidate
from brandmon.model_export.labeling.tasks import (
    LABEL_CONFIG,
    ExportFormatError,
    choice_result,
    model_name,
    read_export,
    to_task,
)
from tests.model_export.labeling.posts import scored


def test_label_config_offers_the_three_labels_over_the_text() -> None:
    root = ET.fromstring(LABEL_CONFIG)
    text = root.find("Text")
    choices = root.find("Choices")
    assert text is not None and text.get("value") == "$text"
    assert choices is not None and choices.get("toName") == text.get("name")
    assert [c.get("value") for c in choices] == ["negative", "neutral", "positive"]


def test_task_carries_the_post_and_the_models_label_as_a_prediction() -> None:
    post = scored("p9", "meh", (0.2, 0.5, 0.3), brand="globex")
    task = to_task(Candidate(post, uncertainty=0.8))
    assert task["data"]["text"] == "meh"
    assert task["data"]["post_id"] == "p9"
    assert task["data"]["brand"] == "globex"
    assert task["data"]["model_label"] == "neutral"
    (prediction,) = task["predictions"]
    assert prediction["model_version"] == "brandmon-sentiment-minilm@0.1.0"
    assert prediction["score"] == 0.5
    assert prediction["result"] == choice_result("neutral")
    region = prediction["result"][0]
    root = ET.fromstring(LABEL_CONFIG)
    assert region["from_name"] == root.find("Choices").get("name")  # type: ignore[union-attr]
    assert region["to_name"] == root.find("Text").get("name")  # type: ignore[union-attr]


def test_prediction_names_the_model_once_whatever_form_its_id_has() -> None:
    # the score worker writes model_id as name@version; the version must not be added again
    post = scored("p1", "fine", (0.1, 0.2, 0.7))
    assert post.model_id == "brandmon-sentiment-minilm@0.1.0"
    assert model_name(post) == "brandmon-sentiment-minilm@0.1.0"
    bare = post.model_copy(update={"model_id": "sentiment", "model_version": "2.0.0"})
    assert model_name(bare) == "sentiment@2.0.0"
    (prediction,) = to_task(Candidate(bare, uncertainty=0.3))["predictions"]
    assert prediction["model_version"] == "sentiment@2.0.0"


def test_export_reading_keeps_choices_and_counts_cancelled_and_empty() -> None:
    export = [
        {
            "id": 7,
            "data": {"text": "hello", "post_id": "a"},
            "annotations": [
                {"result": choice_result("positive"), "was_cancelled": False},
                {"result": choice_result("negative"), "was_cancelled": True},
                {"result": [], "was_cancelled": False},
                {"result": choice_result("angry")},  # not a label we know
            ],
        },
        {"id": 8, "data": {"text": "nobody came"}, "annotations": []},
    ]
    first, second = read_export(export)
    assert first.task_id == 7 and first.labels == ["positive"]
    assert first.cancelled == 1 and first.empty == 2
    assert second.labels == []


@pytest.mark.parametrize(
    ("export", "message"),
    [
        ({"tasks": []}, "list of tasks"),
        ([{"id": 1}], "not a Label Studio task"),
        ([{"id": 1, "data": {"image": "x.png"}}], "no data.text"),
    ],
)
def test_an_export_that_is_not_ours_is_refused_with_a_reason(export: object, message: str) -> None:
    with pytest.raises(ExportFormatError, match=message):
        read_export(export)
