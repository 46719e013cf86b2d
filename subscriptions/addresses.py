"""Which network addresses a webhook may be sent to (the SSRF policy).

One predicate, used at save time (subscriptions.validators) and at send time
(delivery.transport, on the address actually connected to). It starts from
requests-hardened's filter (Python's private ranges, multicast, and its extra
list: CG-NAT, NAT64, 6to4, ...) and adds what that filter leaves to the
Python version in use: reserved, site-local and IPv4-compatible IPv6, and any
address that is not globally routable.
"""

import ipaddress

from requests_hardened.ip_filter import _is_ip_in_extra_blocked_ranges

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Checked in this order, so the most telling name is given.
_KINDS = (
    ("is_unspecified", "an unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address (cloud metadata services such as 169.254.169.254 live there)"),
    ("is_multicast", "a multicast address"),
    ("is_site_local", "a site-local address"),
    ("is_private", "a private-network address"),
    ("is_reserved", "a reserved address"),
)


def unwrap(ip: IPAddress) -> IPAddress:
    """Return the IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) IPv6 address, else ip."""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def blocked_reason(address: str | IPAddress) -> str | None:
    """Return why webhooks may not go to this address (e.g. "a loopback address"), or None if they may."""
    ip = unwrap(ipaddress.ip_address(address) if isinstance(address, str) else address)
    for attribute, reason in _KINDS:
        if getattr(ip, attribute, False):
            return reason
    if _is_ip_in_extra_blocked_ranges(ip):
        return "an address reserved for translation or special use"
    if ip.version == 6 and ip in ipaddress.ip_network("::/96"):
        return "an IPv4-compatible IPv6 address"
    if not ip.is_global:
        return "an address that is not publicly routable"
    return None
