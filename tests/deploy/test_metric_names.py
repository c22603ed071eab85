"""Every metric name in a Prometheus rule or a Grafana panel is one the code exports (or, in
a panel, one the shipped rules record).

A renamed metric in brandmon/metrics.py would otherwise leave rules that never fire and empty
panels, silently. The exported names are read off a real registry (`Metrics(CollectorRegistry())`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.promql import metric_names, template_query_names
from tests.deploy.repo import (
    DASHBOARDS,
    PROMETHEUS_SERIES,
    exported_sample_names,
    load_dashboard,
    rules,
)

EXPORTED = exported_sample_names()
RECORDED = {rule["record"] for _, rule in rules() if "record" in rule}


def test_the_registry_exports_the_expected_shapes() -> None:
    # Guards the test itself: histogram, counter and info suffixes as Prometheus sees them.
    assert {
        "brandmon_posts_consumed_total",
        "brandmon_inference_seconds_bucket",
        "brandmon_inference_seconds_sum",
        "brandmon_inference_seconds_count",
        "brandmon_model_info",
        "brandmon_consumer_lag",
        "brandmon_brand_negative_share",
        "brandmon_predictions_total",
        "brandmon_prediction_confidence_bucket",
        "brandmon_prediction_confidence_count",
    } <= EXPORTED


@pytest.mark.parametrize(
    "rule",
    [rule for _, rule in rules()],
    ids=lambda r: r.get("alert") or r.get("record"),
)
def test_rule_reads_only_exported_or_recorded_series(rule: dict[str, Any]) -> None:
    names = metric_names(rule["expr"])
    assert names, f"no metric name found in {rule['expr']!r}"
    unknown = names - EXPORTED - RECORDED - PROMETHEUS_SERIES
    assert not unknown, f"not exported by brandmon/metrics.py nor recorded here: {unknown}"


def test_recording_rules_follow_the_naming_convention() -> None:
    # level:metric:operations, so a recorded series is never mistaken for a raw one.
    for name in RECORDED:
        assert name.count(":") == 2, name
        assert name not in EXPORTED


def _panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for panel in items:
        out.append(panel)
        out += _panels(panel.get("panels", []))
    return out


def _dashboard_ids(path: Path) -> list[str]:
    return [p["title"] for p in _panels(load_dashboard(path)["panels"]) if p["type"] != "row"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_queries_exported_metrics(path: Path) -> None:
    dashboard = load_dashboard(path)
    panels = [p for p in _panels(dashboard["panels"]) if p["type"] != "row"]
    assert panels
    for panel in panels:
        exprs = [t["expr"] for t in panel.get("targets", []) if t.get("expr")]
        assert exprs, f"panel {panel['title']!r} has no PromQL query"
        for expr in exprs:
            names = metric_names(expr)
            assert names, f"panel {panel['title']!r}: no metric in {expr!r}"
            # A recorded series is fine where only the rules can afford it (a week of
            # history): the drift panels read the PSI the model rules record.
            unknown = names - EXPORTED - RECORDED - PROMETHEUS_SERIES
            assert not unknown, f"panel {panel['title']!r} uses unexported {unknown}: {expr}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_variables_and_annotations_query_exported_metrics(path: Path) -> None:
    dashboard = load_dashboard(path)
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        names = template_query_names(query)
        assert names and not names - EXPORTED, f"variable {variable['name']}: {query}"
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            names = metric_names(annotation["expr"])
            assert names and not names - EXPORTED, f"annotation {annotation['name']}"
