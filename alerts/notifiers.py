"""Notification channels: PagerDuty Events API v2, Slack incoming webhook, generic JSON webhook,
and the log. Each turns an `Alert` into one request and says whether a failure is worth
retrying; `alerts.dispatch` runs them from the `alerts` topic with retries and metrics, routed
by each channel's minimum severity (`min_severities`), and `brandmon alerts test-notify` calls
them directly (every configured channel, whatever its minimum: it tests the connection).

Secrets (the routing key, webhook URLs) are SecretStr until the moment of the request and
never appear in an error message: errors name the channel, the HTTP status or the kind of
transport failure, nothing else. httpx logs full request URLs at INFO; the process-wide log
redaction installed by `brandmon.settings.load_settings()` masks them (brandmon.redaction).

Producer-controlled text (the brand, post ids, the summary that quotes the brand) is escaped
for Slack's mrkdwn (`<!channel>` must not ping a channel) and for the log (a newline must
not forge a line).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from brandmon.alert_settings import AlertSettings
from brandmon.contracts.alerts import Alert, Severity
from brandmon.redaction import log_safe

log = logging.getLogger(__name__)

#: PagerDuty truncates summaries at 1024 characters; we do it ourselves to stay valid.
PAGERDUTY_SUMMARY_MAX = 1024


class DeliveryError(Exception):
    """A channel could not deliver an alert. `retryable` says whether trying again may help."""

    def __init__(self, channel: str, reason: str, *, retryable: bool) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason
        self.retryable = retryable


class Notifier(Protocol):
    """One channel. `send` returns when the far end accepted the alert, else raises."""

    channel: str

    async def send(self, alert: Alert) -> None: ...


# --- payloads --------------------------------------------------------------------------------


def pagerduty_event(alert: Alert, routing_key: str, source: str) -> dict[str, Any]:
    """The PagerDuty Events API v2 body for `alert` (resolves reuse the trigger's dedup_key)."""
    return {
        "routing_key": routing_key,
        "event_action": alert.action,
        "dedup_key": alert.dedup_key,
        "payload": {
            "summary": alert.summary[:PAGERDUTY_SUMMARY_MAX],
            "source": source,
            "severity": alert.severity,
            "timestamp": alert.evaluated_at.isoformat(),
            "component": alert.brand,
            "group": "brand-sentiment",
            "class": "negative_sentiment_spike",
            "custom_details": alert.model_dump(mode="json"),
        },
        "client": "brandmon",
    }


def slack_escape(text: str) -> str:
    """`text` as literal Slack mrkdwn: &, < and > escaped, so `<!channel>`, `<@U123>` or
    `<https://evil|click>` from a producer stay text (Slack's rule: only these three)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(alert: Alert) -> dict[str, Any]:
    """A Slack incoming-webhook message: the summary plus the key figures, producer text
    escaped."""
    icon = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
    head = ":white_check_mark:" if alert.action == "resolve" else icon[alert.severity]
    counts = alert.counts
    share = f"{counts.share:.0%}" if counts.share is not None else "n/a"
    baseline = f"{alert.baseline_share:.0%}" if alert.baseline_share is not None else "warm-up"
    summary = slack_escape(alert.summary)
    fields = [
        f"*Brand*\n{slack_escape(alert.brand)}",
        f"*Negative share*\n{share} ({counts.negative_voices}/{counts.voices} voices)",
        f"*Baseline*\n{baseline}",
        f"*Window*\n{alert.window_start:%H:%M}–{alert.window_end:%H:%M} UTC",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{head} {summary}"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if alert.sample_post_ids:
        samples = slack_escape(", ".join(alert.sample_post_ids))
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Samples: {samples}"}]}
        )
    return {"text": f"{head} {summary}", "blocks": blocks}


# --- channels --------------------------------------------------------------------------------


ClientSource = Callable[[], httpx.AsyncClient]


class HttpNotifier:
    """POSTs a JSON body; 2xx is success, 429/5xx/transport errors are retryable.

    `client` returns the HTTP client to use at send time (the hub's current one), so a hub
    that is stopped and started again gets a fresh client.
    """

    channel = "http"

    def __init__(self, client: ClientSource, url: SecretStr, timeout: float) -> None:
        self._client = client
        self._url = url
        self._timeout = timeout

    def body(self, alert: Alert) -> dict[str, Any]:
        return alert.model_dump(mode="json")

    async def send(self, alert: Alert) -> None:
        try:
            response = await self._client().post(
                self._url.get_secret_value(), json=self.body(alert), timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise DeliveryError(self.channel, "timed out", retryable=True) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            reason = f"bad URL ({type(exc).__name__}): check the configured URL"
            raise DeliveryError(self.channel, reason, retryable=False) from exc
        except httpx.HTTPError as exc:
            # Only the exception's type: its text may quote the (secret) URL.
            reason = f"transport error ({type(exc).__name__})"
            raise DeliveryError(self.channel, reason, retryable=True) from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        retryable = status == 429 or status >= 500
        raise DeliveryError(self.channel, f"HTTP {status}", retryable=retryable)


class PagerDutyNotifier(HttpNotifier):
    """PagerDuty Events API v2 (a 202 only means queued; resending a resolve is harmless)."""

    channel = "pagerduty"

    def __init__(
        self,
        client: ClientSource,
        url: str,
        routing_key: SecretStr,
        source: str,
        timeout: float,
    ) -> None:
        super().__init__(client, SecretStr(url), timeout)
        self._routing_key = routing_key
        self._source = source

    def body(self, alert: Alert) -> dict[str, Any]:
        return pagerduty_event(alert, self._routing_key.get_secret_value(), self._source)


class SlackNotifier(HttpNotifier):
    channel = "slack"

    def body(self, alert: Alert) -> dict[str, Any]:
        return slack_message(alert)


class WebhookNotifier(HttpNotifier):
    """Generic webhook: the alert's own JSON (see `brandmon.contracts.alerts.Alert`)."""

    channel = "webhook"


class LogNotifier:
    """Writes each alert to the log (always on by default; the `alerts` topic is the record).
    The summary and dedup_key quote the brand, so they are escaped to stay on one line."""

    channel = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("brandmon.alerts.events")

    async def send(self, alert: Alert) -> None:
        level = logging.WARNING if alert.action == "trigger" else logging.INFO
        self._log.log(
            level,
            "%s [dedup_key=%s alert_id=%s]",
            log_safe(alert.summary),
            log_safe(alert.dedup_key),
            log_safe(alert.alert_id),
        )


# --- building from settings ------------------------------------------------------------------


def http_channels(settings: AlertSettings, client: ClientSource) -> list[Notifier]:
    """The HTTP channels that are configured (those with a secret set)."""
    timeout = settings.notifier_timeout_seconds
    channels: list[Notifier] = []
    if settings.pagerduty_routing_key is not None:
        channels.append(
            PagerDutyNotifier(
                client,
                settings.pagerduty_url,
                settings.pagerduty_routing_key,
                settings.pagerduty_source,
                timeout,
            )
        )
    if settings.slack_webhook_url is not None:
        channels.append(SlackNotifier(client, settings.slack_webhook_url, timeout))
    if settings.webhook_url is not None:
        channels.append(WebhookNotifier(client, settings.webhook_url, timeout))
    return channels


def min_severities(settings: AlertSettings) -> dict[str, Severity]:
    """Each channel's lowest severity (BRANDMON_ALERTS__<CHANNEL>_MIN_SEVERITY); the dispatcher
    routes by it (alerts.dispatch.Routing), `brandmon alerts test-notify` does not."""
    return {
        PagerDutyNotifier.channel: settings.pagerduty_min_severity,
        SlackNotifier.channel: settings.slack_min_severity,
        WebhookNotifier.channel: settings.webhook_min_severity,
        LogNotifier.channel: settings.log_min_severity,
    }


def configured_channels(settings: AlertSettings, client: ClientSource) -> list[Notifier]:
    """Every channel to deliver to: the configured HTTP ones, plus the log unless disabled."""
    channels = http_channels(settings, client)
    if settings.log_notifier:
        channels.append(LogNotifier())
    return channels
