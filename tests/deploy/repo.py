"""Paths of the deploy files and what the code exports, shared by the deploy tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from brandmon.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.rules.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.test.yml"))
GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERFILE_GPU = DEPLOY / "Dockerfile.gpu"

#: Series Prometheus writes itself, which a rule or panel may read besides the code's metrics.
PROMETHEUS_SERIES = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})


def exported_sample_names() -> set[str]:
    """Every sample name a worker's /metrics can carry, read off a real registry.

    Labelled metrics export nothing until a child exists, so one child of each is made first.
    """
    metrics = Metrics(CollectorRegistry())
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase) and value._labelnames:
            value.labels(*["x"] * len(value._labelnames))
    return {sample.name for family in metrics.registry.collect() for sample in family.samples}


def load_yaml(path: Path) -> Any:
    with path.open() as fh:
        return yaml.safe_load(fh)


def rules() -> Iterator[tuple[Path, dict[str, Any]]]:
    """(file, rule) for every recording and alerting rule."""
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                yield path, rule


def load_dashboard(path: Path) -> dict[str, Any]:
    with path.open() as fh:
        data: dict[str, Any] = json.load(fh)
    return data


#: What Grafana substitutes for the dashboard's variables, for evaluating its queries elsewhere.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "${datasource}": "",
    "$job": ".*",
    "$alerts_job": ".*",
    "$brand": ".*",
}


def dashboard_queries(path: Path) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL with the variables substituted) for every panel target, and
    ("annotation: name", PromQL) for every annotation query."""
    dashboard = load_dashboard(path)
    found = [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    found += [
        (f"annotation: {a['name']}", a["expr"])
        for a in dashboard.get("annotations", {}).get("list", [])
        if a.get("expr")
    ]
    for title, expr in found:
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown variable in {title!r}: {expr}"
        yield title, expr
