"""Where notifiers may send (brandmon.alerts.destinations): cloud metadata always refused,
link-local, loopback and private addresses refused unless in an allowed network, whether the
URL names the address or a host that resolves to it."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from brandmon.alert_settings import AlertSettings
from brandmon.alerts.destinations import (
    DestinationError,
    check_destinations,
    notifier_urls,
    resolve,
)
from brandmon.alerts.notifiers import http_channels

WEBHOOK = "BRANDMON_ALERTS__WEBHOOK_URL"
ALLOW = "BRANDMON_ALERTS__NOTIFIER_ALLOWED_NETWORKS"
#: The secret part of a webhook URL, which no message may quote.
SECRET_PATH = "/hooks/T000/B000/s3cr3tPATH"

#: Names the fake DNS knows; any other name does not resolve.
DNS = {
    "hooks.example.com": ["93.184.216.34"],
    "relay.corp.example": ["10.20.0.7"],
    "rebind.example": ["93.184.216.34", "169.254.169.254"],
    "v6.example": ["2001:4860:4860::8888", "fe80::1"],
}


def table(host: str) -> list[str]:
    try:
        return DNS[host]
    except KeyError:
        raise OSError(f"[Errno -2] Name or service not known: {host}") from None


def never(host: str) -> list[str]:
    raise AssertionError(f"{host} should not have been resolved")


def webhook(url: str, *allowed: str) -> AlertSettings:
    return AlertSettings(
        webhook_url=SecretStr(url + SECRET_PATH), notifier_allowed_networks=allowed
    )


def refusal(settings: AlertSettings, resolver: Callable[[str], list[str]] = table) -> str:
    with pytest.raises(DestinationError) as info:
        check_destinations(settings, resolver)
    message = str(info.value)
    assert message.startswith(f"{WEBHOOK}: its host ")
    assert SECRET_PATH not in message
    return message


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://169.254.169.254", "169.254.169.254 is a cloud metadata address"),
        ("https://[fd00:ec2::254]", "fd00:ec2::254 is a cloud metadata address"),
        ("https://[::ffff:169.254.169.254]", "is a cloud metadata address"),
        ("https://169.254.10.1:8443", "169.254.10.1 is a link-local address"),
        ("https://[fe80::1]", "fe80::1 is a link-local address"),
        ("https://127.0.0.1:9000", "127.0.0.1 is a loopback address"),
        ("https://[::1]", "::1 is a loopback address"),
        ("https://10.1.2.3", "10.1.2.3 is a private address"),
        ("https://192.168.0.10", "192.168.0.10 is a private address"),
    ],
)
def test_a_literal_address_that_is_not_public_is_refused(url: str, says: str) -> None:
    assert says in refusal(webhook(url), resolver=never)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://relay.corp.example", "relay.corp.example resolves to 10.20.0.7, a private"),
        ("https://rebind.example", "rebind.example resolves to 169.254.169.254, a cloud metadata"),
        ("https://v6.example", "v6.example resolves to fe80::1, a link-local address"),
    ],
)
def test_a_host_name_is_judged_by_every_address_it_resolves_to(url: str, says: str) -> None:
    assert says in refusal(webhook(url))


def test_the_metadata_host_name_is_refused_without_asking_dns() -> None:
    message = refusal(webhook("https://metadata.google.internal."), resolver=never)
    assert "metadata.google.internal. is a cloud metadata service" in message


def test_a_refusal_names_the_setting_that_allows_it() -> None:
    message = refusal(webhook("https://relay.corp.example"))
    assert f"""{ALLOW}='["10.20.0.7/32"]'""" in message


def test_an_allowed_network_lets_loopback_and_private_hosts_through() -> None:
    check_destinations(webhook("https://127.0.0.1:9000", "127.0.0.0/8"), never)
    check_destinations(webhook("https://relay.corp.example", "10.20.0.0/16"), table)
    check_destinations(webhook("https://[::1]", "::1/128"), never)
    assert "10.20.0.7" in refusal(webhook("https://relay.corp.example", "127.0.0.0/8"))


def test_metadata_addresses_stay_refused_inside_an_allowed_network() -> None:
    settings = webhook("https://169.254.169.254", "169.254.0.0/16")
    assert "cloud metadata address" in refusal(settings, resolver=never)
    check_destinations(webhook("https://169.254.10.1", "169.254.0.0/16"), never)


def test_public_hosts_pass_and_an_unresolvable_one_only_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    check_destinations(webhook("https://hooks.example.com"), table)
    with caplog.at_level(logging.WARNING):
        check_destinations(webhook("https://down.example"), table)
    assert "down.example does not resolve" in caplog.text


def test_every_configured_channel_is_checked() -> None:
    slack = AlertSettings(slack_webhook_url=SecretStr("https://10.0.0.1/services/x"))
    with pytest.raises(DestinationError, match="BRANDMON_ALERTS__SLACK_WEBHOOK_URL"):
        check_destinations(slack, never)
    pagerduty = AlertSettings(
        pagerduty_url="https://[fe80::2]/v2/enqueue", pagerduty_routing_key=SecretStr("rk")
    )
    with pytest.raises(DestinationError, match="BRANDMON_ALERTS__PAGERDUTY_URL"):
        check_destinations(pagerduty, never)
    # the PagerDuty URL is not used without a routing key
    check_destinations(AlertSettings(pagerduty_url="https://10.0.0.1/v2/enqueue"), never)


def test_the_system_resolver_is_asked_for_host_names() -> None:
    # localhost resolves from /etc/hosts, without a network
    assert "localhost resolves to" in refusal(webhook("https://localhost:8443"), resolve)


def test_every_http_channel_has_its_url_checked() -> None:
    settings = AlertSettings(
        pagerduty_routing_key=SecretStr("rk"),
        slack_webhook_url=SecretStr("https://hooks.slack.com/services/x"),
        webhook_url=SecretStr("https://hooks.example.com/x"),
    )
    channels = http_channels(settings, httpx.AsyncClient)
    assert len(notifier_urls(settings)) == len(channels) == 3
