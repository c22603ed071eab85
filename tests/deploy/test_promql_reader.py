"""The little PromQL reader the other deploy tests rely on: it must find every metric name
and nothing else, or those tests would check the wrong thing."""

from __future__ import annotations

import pytest

from tests.deploy.promql import metric_names, template_query_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('up{job="brandmon-worker"} == 0', {"up"}),
        ("sum by (job) (rate(posts_consumed_total[5m])) == 0", {"posts_consumed_total"}),
        (
            "sum(rate(a_total[5m])) by (job) / on (job) group_left (reason) sum without (i) (b)",
            {"a_total", "b"},
        ),
        (
            'histogram_quantile(0.95, sum by (le) (rate(x_bucket{job=~"$job"}[$__rate_interval])))',
            {"x_bucket"},
        ),
        ("avg_over_time(rec:share:max[3h:1m] offset 1m) + 0.10", {"rec:share:max"}),
        ("x > bool 1 and on (brand) y unless ignoring (a, b) z", {"x", "y", "z"}),
        ('ALERTS{alertname=~"A|B", expr="sum(not_a_metric)"}', {"ALERTS"}),
        ("clamp_min(stddev, 0.03) ^ 2 * 1e3 - Inf", {"stddev"}),
        ("time() - min_over_time(timestamp(g)[65m:1m])", {"g"}),
        ("vector(1) or absent(up)", {"up"}),
        ('count(${metric_var}) + sum(m{brand=~"${brand}"})', {"m"}),
        ("a # the 'first' case\nor b # \"no series\" at all", {"a", "b"}),
        ('c{x="#not a comment"}', {"c"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("label_values(brandmon_posts_consumed_total, job)", {"brandmon_posts_consumed_total"}),
        ('label_values(g{job=~"$job"}, brand)', {"g"}),
        ("label_values(job)", set()),
        ("query_result(topk(5, sum by (brand) (g)))", {"g"}),
        ("metrics(brandmon_.*)", set()),
    ],
)
def test_template_query_names(query: str, names: set[str]) -> None:
    assert template_query_names(query) == names
