"""Every alert in the rules has promtool unit tests both ways: a case where it fires and a
case where it must stay quiet (checked by reading the test files; promtool runs them)."""

from __future__ import annotations

import re
from collections import defaultdict

from tests.deploy.repo import RULE_TESTS, load_yaml, rules


def test_every_alert_is_tested_firing_and_quiet() -> None:
    alerts = {rule["alert"] for _, rule in rules() if "alert" in rule}
    fired: dict[str, set[str]] = defaultdict(set)  # alertname -> severities seen firing
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                name = check["alertname"]
                if check.get("exp_alerts"):
                    fired[name] |= {a["exp_labels"]["severity"] for a in check["exp_alerts"]}
                else:
                    quiet.add(name)
    assert alerts - set(fired) == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested staying quiet"
    # Each severity an alert can have is seen firing at least once.
    for _, rule in rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in fired[rule["alert"]], rule["alert"]


def test_every_runbook_link_names_a_section_of_the_operations_guide() -> None:
    # `runbook: docs/operations.md#anchor`: the anchor of a heading there, as GitHub makes it
    # (lower case, punctuation dropped, spaces to hyphens).
    from tests.deploy.repo import REPO

    guide = REPO / "docs" / "operations.md"
    anchors = {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in guide.read_text().splitlines()
        if line.startswith("#")
    }
    for _, rule in rules():
        if "alert" in rule:
            page, _, anchor = rule["annotations"]["runbook"].partition("#")
            assert page == "docs/operations.md" and anchor in anchors, rule["alert"]
