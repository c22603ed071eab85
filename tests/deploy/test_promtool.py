"""The Prometheus config and rules pass promtool: syntax, and the recorded-series unit tests
in deploy/prometheus/tests (every alert has a case that fires and one that must not)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.deploy.repo import (
    DASHBOARDS,
    PROMETHEUS,
    PROMETHEUS_CONFIG,
    RULE_FILES,
    RULE_TESTS,
    dashboard_queries,
)

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian package `prometheus`; .ci/install-system.sh)",
)


def promtool(*args: str) -> str:
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, *args],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def test_there_are_rules_and_rule_tests() -> None:
    assert RULE_FILES, "no deploy/prometheus/rules/*.rules.yml"
    assert RULE_TESTS, "no deploy/prometheus/tests/*.test.yml"


def test_check_config() -> None:
    out = promtool("check", "config", str(PROMETHEUS_CONFIG))
    # The config must actually load the rules (a glob that matches nothing is valid too).
    assert f"{len(RULE_FILES)} rule files found" in out


def test_check_rules() -> None:
    promtool("check", "rules", *map(str, RULE_FILES))


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_rule_unit_tests(test_file) -> None:
    out = promtool("test", "rules", str(test_file))
    assert "SUCCESS" in out


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_are_valid_promql(dashboard, tmp_path) -> None:
    # promtool has no expression checker of its own, so every panel query becomes a
    # recording rule and `check rules` parses them all.
    queries = list(dashboard_queries(dashboard))
    assert queries
    rules = [
        {"record": f"dashboard:panel_{i}:query", "expr": expr}
        for i, (_, expr) in enumerate(queries)
    ]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool("check", "rules", str(path))
