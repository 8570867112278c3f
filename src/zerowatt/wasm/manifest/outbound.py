"""``allowed_outbound_hosts``: Spin's allow-list for a guest's network requests.

Each entry is ``scheme://host[:port]``: ``*`` may stand for the scheme, the host, or the port, a host
may be ``*.example.com`` (sub-domains only), a port may be a range ``8000..8099``, and the port may be
left out for schemes with a well-known default. The host may also be an IP network in CIDR notation
(``http://10.0.0.0/24``, ``*://127.0.0.0/24:80``, ``*://ff00::/8:80``), as Spin accepts (its
``outbound-networking-config`` crate): it matches IP-literal hosts inside the network, never domain names.
The parser runs at load time (errors name the key);
:func:`is_outbound_allowed` is the pure check an executor makes before each outbound connection.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from zerowatt.errors import ValidationError

#: What an entry whose template resolved to nothing looks like; Spin skips these instead of failing.
EMPTY_HOSTS = frozenset({"", "http://", "https://"})
#: Default ports of the schemes Spin knows, so ``https://example.com`` means port 443.
DEFAULT_PORTS: dict[str, int] = {
    "http": 80,
    "https": 443,
    "redis": 6379,
    "mysql": 3306,
    "postgres": 5432,
    "mqtt": 1883,
}

_PATTERN = re.compile(
    r"(?P<scheme>\*|[a-z][a-z0-9+.-]*)://"
    r"(?P<host>\*|(?:\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>\*|\d{1,5}(?:\.\.\d{1,5})?))?/?\Z"
)
#: ``scheme://NETWORK/PREFIX[:port]``: an IPv4 or (bare) IPv6 network; the port follows the prefix length.
_CIDR = re.compile(
    r"(?P<scheme>\*|[a-z][a-z0-9+.-]*)://"
    r"(?P<network>[0-9A-Fa-f:.]+/\d{1,3})"
    r"(?::(?P<port>\*|\d{1,5}(?:\.\.\d{1,5})?))?/?\Z"
)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class HostPattern:
    """One parsed allow-list entry."""

    scheme: str  # "*" or a scheme
    host: str  # "*", "*.example.com", "example.com", "[::1]" (lower-case)
    port_low: int  # inclusive; 0..65535 for "*"
    port_high: int
    network: Network | None = None  # a CIDR entry: ``host`` is its text, IP literals inside it match

    def allows(self, scheme: str, host: str, port: int) -> bool:
        if self.scheme not in ("*", scheme):
            return False
        if not self.port_low <= port <= self.port_high:
            return False
        if self.network is not None:
            try:
                return ipaddress.ip_address(host.strip("[]")) in self.network
            except ValueError:  # a domain name: CIDR entries match IP literals only, as in Spin
                return False
        if self.host == "*":
            return True
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and len(host) > len(self.host) - 1
        return host == self.host


def parse_host_pattern(text: str, where: str) -> HostPattern:
    """Parse one entry, raising :class:`ValidationError` at ``where`` with what was expected."""
    cidr = _CIDR.match(text.strip())
    if cidr is not None:
        try:
            network = ipaddress.ip_network(cidr.group("network"), strict=False)  # host bits dropped, as in Spin
        except ValueError:
            raise ValidationError(where, f"expected an IP network like '10.0.0.0/24' in {text!r}") from None
        low, high = _ports(cidr.group("scheme"), cidr.group("port"), text, where)
        return HostPattern(cidr.group("scheme"), str(network), low, high, network)
    match = _PATTERN.match(text.strip())
    if match is None:
        raise ValidationError(
            where,
            f"expected 'scheme://host[:port]' (e.g. 'https://example.com', '*://*.example.com:8080', "
            f"'http://127.0.0.1:*'), got {text!r}",
        )
    low, high = _ports(match.group("scheme"), match.group("port"), text, where)
    return HostPattern(match.group("scheme"), match.group("host").lower(), low, high)


def _ports(scheme: str, port: str | None, text: str, where: str) -> tuple[int, int]:
    """The inclusive port range of an entry: its port, range or ``*``, else the scheme's default port."""
    if port is None:
        if scheme not in DEFAULT_PORTS:
            raise ValidationError(where, f"{text!r} needs a port: scheme {scheme!r} has no default port")
        return DEFAULT_PORTS[scheme], DEFAULT_PORTS[scheme]
    if port == "*":
        return 0, 65535
    first, _, last = port.partition("..")
    low, high = int(first), int(last or first)
    if not 0 <= low <= high <= 65535:
        raise ValidationError(where, f"port range {port!r} in {text!r} is not within 0..65535 (low..high)")
    return low, high


@lru_cache(maxsize=1024)
def _parsed(patterns: tuple[str, ...]) -> tuple[HostPattern, ...]:
    return tuple(parse_host_pattern(p, "allowed_outbound_hosts") for p in patterns)


def is_outbound_allowed(url: str, patterns: Iterable[str]) -> bool:
    """Whether a guest may connect to ``url`` under the (already validated) allow-list ``patterns``.

    An empty list allows nothing, as in Spin. A URL without a host, or with a scheme that has no
    default port and no explicit port, is refused.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        return False
    if ":" in host:  # IPv6 literal: patterns keep the brackets
        host = f"[{host}]"
    if port is None:
        if scheme not in DEFAULT_PORTS:
            return False
        port = DEFAULT_PORTS[scheme]
    return any(p.allows(scheme, host, port) for p in _parsed(tuple(patterns)))
