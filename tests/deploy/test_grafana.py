"""The Grafana provisioning and dashboard hang together and cover what on-call looks at."""

from __future__ import annotations

import re
from typing import Any

from tests.deploy.repo import DASHBOARDS, GRAFANA, load_dashboard, load_yaml, rules

DASHBOARD = GRAFANA / "dashboards" / "brandmon.json"


def _panels() -> list[dict[str, Any]]:
    return [p for p in load_dashboard(DASHBOARD)["panels"] if p["type"] != "row"]


def _all_exprs() -> str:
    return "\n".join(t["expr"] for p in _panels() for t in p.get("targets", []))


def test_the_dashboard_covers_the_pipeline() -> None:
    exprs = _all_exprs()
    # throughput: consumed, scored and DLQ rates
    for counter in ("posts_consumed_total", "posts_scored_total", "posts_dlq_total"):
        assert re.search(rf"rate\(brandmon_{counter}", exprs), counter
    # latency percentiles from both histograms
    for histogram in ("produce_to_scored_seconds", "inference_seconds"):
        assert re.search(rf"histogram_quantile\(0\.95, .*brandmon_{histogram}_bucket", exprs)
    assert "max by (topic, partition) (brandmon_consumer_lag" in exprs  # lag per partition
    assert "sum by (reason) (rate(brandmon_posts_dlq_total" in exprs  # DLQ by reason
    assert "brandmon_brand_negative_share" in exprs  # negative share per brand
    assert "sum by (severity, action) (increase(brandmon_alerts_total" in exprs  # timeline
    assert "brandmon_model_info" in exprs  # model in use
    # where a batch's time goes: every stage, mean and p95
    assert "sum by (stage) (rate(brandmon_batch_stage_seconds_sum" in exprs
    assert "sum by (le, stage) (rate(brandmon_batch_stage_seconds_bucket" in exprs


def test_the_model_row_shows_label_shares_drift_and_confidence() -> None:
    by_title = {p["title"]: p for p in _panels()}

    def exprs(title: str) -> str:
        return "\n".join(t["expr"] for t in by_title[title]["targets"])

    # label shares: per model version over all brands, and per brand (the brand variable)
    shares = exprs("Predicted label share per model version")
    assert "sum by (model_version, label) (rate(brandmon_prediction_confidence_count" in shares
    per_brand = exprs("Label share per brand")
    assert "brandmon_predictions_total{" in per_brand and 'brand=~"$brand"' in per_brand
    # drift: the PSI the rules record, per model version and per brand
    recorded = {rule["record"] for _, rule in rules() if "record" in rule}
    psi = exprs("Label drift (PSI, last day vs the week before)")
    for name in (
        "job_model:brandmon_predictions:psi1d",
        "job_model_brand:brandmon_predictions:psi1d",
    ):
        assert name in psi and name in recorded, name
    # confidence: a heatmap of the histogram's buckets, and the low-confidence share
    heatmap = by_title["Prediction confidence"]
    assert heatmap["type"] == "heatmap"
    (target,) = heatmap["targets"]
    assert target["format"] == "heatmap"
    assert target["expr"].startswith("sum by (le) (increase(brandmon_prediction_confidence_bucket")
    low = exprs("Low-confidence share (top-class probability <= 0.6)")
    assert 'brandmon_prediction_confidence_bucket{job=~"$job", le="0.6"}' in low


def test_alert_annotations_name_existing_panels() -> None:
    # `dashboard: "Grafana: brandmon / <panel title>"` sends on-call to a panel that exists.
    titles = {p["title"] for p in _panels()}
    named = [
        rule["annotations"]["dashboard"]
        for _, rule in rules()
        if "alert" in rule and "dashboard" in rule.get("annotations", {})
    ]
    assert any("drift" in name for name in named)
    for name in named:
        prefix, _, title = name.partition(" / ")
        assert prefix == "Grafana: brandmon" and title in titles, name


def test_panels_have_unique_ids_titles_and_do_not_overlap() -> None:
    for path in DASHBOARDS:
        dashboard = load_dashboard(path)
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path
        cells: set[tuple[int, int]] = set()
        for panel in dashboard["panels"]:
            assert panel.get("title"), panel["id"]
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24, panel["title"]
            mine = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not mine & cells, f"{panel['title']!r} overlaps another panel"
            cells |= mine


def test_panels_use_the_provisioned_datasource() -> None:
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = datasources["datasources"]
    dashboard = load_dashboard(DASHBOARD)
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == source["type"] == "prometheus"
    assert variable["current"]["value"] == source["uid"]
    for panel in _panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]


def test_the_provider_loads_the_dashboards_from_where_compose_mounts_them() -> None:
    from tests.deploy.repo import COMPOSE

    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "brandmon.yml")
    (entry,) = provider["providers"]
    mounts = load_yaml(COMPOSE)["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{entry['options']['path']}:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


#: Series only the alert worker (`brandmon alerts worker`, its own scrape job) exports.
ALERT_STAGE = (
    "brandmon_brand_",
    "brandmon_alerts_total",
    "brandmon_late_events_total",
    "brandmon_future_events_total",
    "brandmon_notifier_",
    "brandmon_alert_input_invalid_total",
)


def test_each_stage_is_filtered_by_its_own_job_variable() -> None:
    # Score workers and alert workers are separate scrape jobs: an alert-stage query filtered
    # by the score job (or the reverse) shows nothing, silently.
    dashboard = load_dashboard(DASHBOARD)
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"job", "alerts_job", "brand"} <= names
    exprs = [t["expr"] for p in _panels() for t in p.get("targets", [])]
    exprs += [a["expr"] for a in dashboard["annotations"]["list"] if a.get("expr")]
    exprs += [
        v["query"]["query"]
        for v in dashboard["templating"]["list"]
        if v["type"] == "query" and "{" in v["query"]["query"]
    ]
    for expr in exprs:
        if expr.startswith("sum(up{"):
            continue
        alert_stage = any(name in expr for name in ALERT_STAGE)
        if alert_stage:
            assert '$job"' not in expr, expr
        elif "brandmon_" in expr:
            assert '$alerts_job"' not in expr, expr
    # "All" of a job variable must list that stage's jobs, not match every job (".*").
    for variable in dashboard["templating"]["list"]:
        if variable["name"] in ("job", "alerts_job"):
            assert "allValue" not in variable, variable["name"]
    (workers_up,) = [p for p in _panels() if p["title"] == "Workers up"]
    assert {t["expr"] for t in workers_up["targets"]} == {
        'sum(up{job=~"$job"})',
        'sum(up{job=~"$alerts_job"})',
    }


def test_the_challenger_row_compares_champion_and_challenger() -> None:
    by_title = {p["title"]: p for p in _panels()}

    def exprs(title: str) -> str:
        return "\n".join(t["expr"] for t in by_title[title]["targets"])

    comparisons = "brandmon_shadow_comparisons_total{"
    agreement = exprs("Shadow agreement rate")
    assert comparisons in agreement and 'agreement="agree"' in agreement
    per_class = exprs("Disagreement rate by champion class")
    assert per_class.startswith("sum by (champion_label) (rate(brandmon_shadow_comparisons")
    assert 'agreement="disagree"' in per_class
    pairs = exprs("Disagreements (champion -> challenger label)")
    assert "sum by (champion_label, challenger_label)" in pairs
    by_role = exprs("Predictions by role")
    assert "sum by (role, label) (rate(brandmon_role_predictions_total" in by_role
    assert "brandmon_challenger_errors_total" in by_role
