"""The Grafana provisioning and dashboard hang together and cover what on-call looks at."""

from __future__ import annotations

import re
from typing import Any

from tests.deploy.repo import DASHBOARDS, GRAFANA, load_dashboard, load_yaml

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
