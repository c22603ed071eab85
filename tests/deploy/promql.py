"""Just enough PromQL reading for the deploy tests: which metric names does an expression use?

Not a parser: it removes what can't be a metric name (strings, comments, label matchers, ranges,
grouping clauses, Grafana variables, numbers and durations), then keeps the identifiers that
are neither keywords nor calls of a function or aggregation.
"""

from __future__ import annotations

import re

#: Words of the language that look like identifiers but never name a metric.
KEYWORDS = frozenset(
    {
        "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
        "group_left", "group_right", "inf", "nan", "start", "end",
    }
)  # fmt: skip

#: Strings and comments in one pass, so a quote in a comment or a # in a string can't confuse.
_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`|#[^\n]*')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_IDENT = re.compile(r"(?<![\w:.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects, e.g. {'up'} for 'sum by (job) (up{a="b"})'."""
    text = _STRING_OR_COMMENT.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _VARIABLE.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


#: Grafana's templating functions: label_values(metric_or_selector, label) and friends.
_GRAFANA_TEMPLATE = re.compile(
    r"^\s*(?:label_values|query_result)\((?P<expr>.*?)(?:,\s*\w+\s*)?\)\s*$", re.DOTALL
)
_METRICS_TEMPLATE = re.compile(r"^\s*metrics\((?P<regex>.*)\)\s*$")


def template_query_names(query: str) -> set[str]:
    """Metric names a Grafana variable query reads (label_values(expr, label), query_result)."""
    match = _GRAFANA_TEMPLATE.match(query)
    if match is None:
        if _METRICS_TEMPLATE.match(query):
            return set()  # a name regex, not a selector
        return metric_names(query)
    inner = match.group("expr")
    # label_values(label) alone selects no metric
    if "," not in query and re.fullmatch(r"\s*\w+\s*", inner):
        return set()
    return metric_names(inner)
