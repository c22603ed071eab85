"""Notification channels: PagerDuty Events API v2, Slack incoming webhook, generic JSON webhook,
and the log. Each turns an `Alert` into one request; `alerts.hub.NotifierHub` runs them off
the stream's path with a queue, retries and metrics.

Secrets (the routing key, webhook URLs) are SecretStr until the moment of the request and
never appear in a log line or an error message: errors name the channel, the HTTP status or
the kind of transport failure, nothing else. `install_redaction()` also masks them in records
of the `httpx` logger, which logs full request URLs at INFO.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from alerts.config import AlertSettings
from alerts.schema import Alert

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


def slack_message(alert: Alert) -> dict[str, Any]:
    """A Slack incoming-webhook message: the summary plus the key figures."""
    icon = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
    head = ":white_check_mark:" if alert.action == "resolve" else icon[alert.severity]
    counts = alert.counts
    share = f"{counts.share:.0%}" if counts.share is not None else "n/a"
    baseline = f"{alert.baseline_share:.0%}" if alert.baseline_share is not None else "warm-up"
    fields = [
        f"*Brand*\n{alert.brand}",
        f"*Negative share*\n{share} ({counts.negative_voices}/{counts.voices} voices)",
        f"*Baseline*\n{baseline}",
        f"*Window*\n{alert.window_start:%H:%M}–{alert.window_end:%H:%M} UTC",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{head} {alert.summary}"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if alert.sample_post_ids:
        samples = ", ".join(alert.sample_post_ids)
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Samples: {samples}"}]}
        )
    return {"text": f"{head} {alert.summary}", "blocks": blocks}


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
    """Generic webhook: the alert's own JSON (see `alerts.schema.Alert`)."""

    channel = "webhook"


class LogNotifier:
    """Writes each alert to the log (always on by default; the `alerts` topic is the record)."""

    channel = "log"

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("alerts.events")

    async def send(self, alert: Alert) -> None:
        level = logging.WARNING if alert.action == "trigger" else logging.INFO
        self._log.log(
            level, "%s [dedup_key=%s alert_id=%s]", alert.summary, alert.dedup_key, alert.alert_id
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


def secrets_of(settings: AlertSettings) -> list[str]:
    """Every secret value in the settings, for redaction."""
    values = (settings.pagerduty_routing_key, settings.slack_webhook_url, settings.webhook_url)
    return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


class RedactSecrets(logging.Filter):
    """Replaces any of `secrets` in a record's message with '***'."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


#: Loggers that may see a request URL: httpx logs "HTTP Request: POST <url>" at INFO.
REDACTED_LOGGERS = ("httpx", "alerts.notifiers", "alerts.hub")


def install_redaction(secrets: Iterable[str]) -> RedactSecrets:
    """Mask `secrets` in every record of REDACTED_LOGGERS; returns the filter (to remove it)."""
    redact = RedactSecrets(secrets)
    for name in REDACTED_LOGGERS:
        logging.getLogger(name).addFilter(redact)
    return redact


def remove_redaction(redact: RedactSecrets) -> None:
    for name in REDACTED_LOGGERS:
        logging.getLogger(name).removeFilter(redact)
