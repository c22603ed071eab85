"""Where the notifiers may send: checked when the alert worker or `brandmon alerts test-notify`
starts, for every configured notifier URL (BRANDMON_ALERTS__PAGERDUTY_URL, _SLACK_WEBHOOK_URL,
_WEBHOOK_URL).

A notifier URL makes the alert worker send requests from inside the deployment's network.
Pointed at a cloud metadata service it posts there; pointed at loopback or a private address
it reaches services that nothing outside should reach. So a URL's host, as written or as it
resolves now, is refused with a settings error when it is

- a cloud metadata host or address (METADATA_HOSTS, METADATA_ADDRESSES): always;
- any address that is not public (loopback, private, link-local, shared, reserved, ...):
  unless it lies in BRANDMON_ALERTS__NOTIFIER_ALLOWED_NETWORKS (tests on 127.0.0.1, a relay
  inside the company network).

A host name that does not resolve at start is let through with a warning: DNS may be down for
a moment, the alerts topic keeps every alert, and delivery retries. Only the start is checked:
a name that later resolves elsewhere is not caught here (an egress proxy is the place for that).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import urlsplit

from brandmon.alert_settings import AlertSettings

log = logging.getLogger(__name__)

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
#: Host name -> the addresses it resolves to now (socket.getaddrinfo; tests pass a table).
Resolver = Callable[[str], list[str]]

ALLOW_VARIABLE = "BRANDMON_ALERTS__NOTIFIER_ALLOWED_NETWORKS"
#: Instance metadata services: AWS, GCP, Azure, OpenStack (IPv4 and AWS's IPv6), AWS ECS task
#: metadata, Alibaba Cloud, and Azure's platform endpoint (WireServer, a public address).
METADATA_ADDRESSES: frozenset[Address] = frozenset(
    ip_address(a)
    for a in (
        "169.254.169.254",
        "fd00:ec2::254",
        "169.254.170.2",
        "100.100.100.200",
        "168.63.129.16",
    )
)
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog"})


class DestinationError(ValueError):
    """A notifier URL's host is refused. The message names the variable, the host, the address
    and why; never the URL, whose path is a secret."""


def resolve(host: str) -> list[str]:
    """The addresses `host` resolves to now (a literal address: itself)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, None)})


def notifier_urls(settings: AlertSettings) -> dict[str, str]:
    """The URL of each configured HTTP channel, by the variable that sets it."""
    urls: dict[str, str] = {}
    if settings.pagerduty_routing_key is not None:
        urls["BRANDMON_ALERTS__PAGERDUTY_URL"] = settings.pagerduty_url
    if settings.slack_webhook_url is not None:
        urls["BRANDMON_ALERTS__SLACK_WEBHOOK_URL"] = settings.slack_webhook_url.get_secret_value()
    if settings.webhook_url is not None:
        urls["BRANDMON_ALERTS__WEBHOOK_URL"] = settings.webhook_url.get_secret_value()
    return urls


def check_destinations(settings: AlertSettings, resolver: Resolver = resolve) -> None:
    """DestinationError for the first notifier URL whose host is refused (module docstring)."""
    allowed = settings.notifier_allowed_networks
    for variable, url in notifier_urls(settings).items():
        host = urlsplit(url).hostname or ""  # AlertSettings checked: an absolute URL with a host
        problem = _host_problem(host, allowed, resolver)
        if problem is not None:
            raise DestinationError(f"{variable}: {problem}")


def _host_problem(host: str, allowed: Iterable[Network], resolver: Resolver) -> str | None:
    if host.rstrip(".").lower() in METADATA_HOSTS:
        return f"its host {host} is a cloud metadata service: notifiers never send there"
    literal = _literal(host)
    try:
        addresses = [literal] if literal else [ip_address(a) for a in resolver(host)]
    except OSError as exc:  # socket.gaierror: the name does not resolve now
        log.warning("notifier host %s does not resolve now (%s); not checked", host, exc)
        return None
    for address in addresses:
        why = _address_problem(address, allowed)
        if why is not None:
            where = "is" if literal else f"resolves to {address},"
            return f"its host {host} {where} {why}"
    return None


def _literal(host: str) -> Address | None:
    try:
        return ip_address(host)
    except ValueError:
        return None


def _address_problem(address: Address, allowed: Iterable[Network]) -> str | None:
    """Why `address` is refused, or None. An IPv4-mapped IPv6 address is judged as IPv4."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address: notifiers never send there"
    if address.is_global or any(address in network for network in allowed):
        return None
    return (
        f"a {_kind(address)} address: give a public endpoint, or allow it with "
        f"{ALLOW_VARIABLE}='[\"{address}/{address.max_prefixlen}\"]' (or a network around it)"
    )


def _kind(address: Address) -> str:
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    return "private" if address.is_private else "non-public"
