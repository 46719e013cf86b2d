"""Validation of endpoint URLs, shared by the form, the command and the model.

Besides the syntax, the SSRF guard: unless WEBHOOKS_ALLOW_PRIVATE_NETWORKS is
on, a URL whose host is, or resolves to, a loopback, private, link-local,
multicast, reserved or unspecified address is refused (subscriptions.addresses has
the policy). This is the early, friendly check; the transport checks the
address it actually connects to again at send time, which is what stops DNS
rebinding. A host name that does not resolve now is accepted: DNS may be set
up after the webhook, and a resolver outage must not block editing; such a
URL is checked again on every send.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from subscriptions.addresses import blocked_reason

MAX_URL_LENGTH = 2048

_url_syntax = URLValidator(schemes=["https"])


def validate_endpoint_url(url: str) -> None:
    """Raise ValidationError unless url is an HTTPS URL with a host, no credentials, and (outside
    development) no internal address."""
    if not url:
        raise ValidationError("Enter the endpoint URL.", code="required")
    if len(url) > MAX_URL_LENGTH:
        raise ValidationError(f"The URL must be at most {MAX_URL_LENGTH:,} characters.", code="too_long")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ValidationError("Enter a valid URL.", code="invalid") from None
    if parts.scheme.lower() != "https":
        raise ValidationError("The URL must use HTTPS.", code="https_required")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        # urlsplit quietly drops some of these; a URL with them is never what was meant.
        raise ValidationError("Enter a valid URL. It must not contain spaces or control characters.", code="invalid")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationError("The URL must not contain a username or password.", code="credentials")
    try:
        port = parts.port
        hostname = parts.hostname
    except ValueError:
        raise ValidationError("Enter a valid URL: the port is not a number between 0 and 65535.",
                              code="invalid") from None
    if not hostname:
        raise ValidationError("Enter a valid URL with a host name.", code="no_host")
    if port == 0:
        raise ValidationError("Enter a valid URL: port 0 cannot be used.", code="invalid")
    if parts.fragment:
        raise ValidationError("The URL must not contain a #fragment.", code="fragment")
    try:
        _url_syntax(url)
    except ValidationError:
        raise ValidationError("Enter a valid URL.", code="invalid") from None
    host, port = _connection_target(url)
    if not settings.WEBHOOKS_ALLOW_PRIVATE_NETWORKS:
        _refuse_internal_addresses(host, port)


def _connection_target(url: str) -> tuple[str, int]:
    """Return the host and port that requests will connect to for url.

    The host is taken from requests' own preparation of the URL, so that IDNA
    encoding and percent-decoding are the sender's and not a second parser's.
    """
    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
        parsed = urllib3.util.parse_url(prepared.url)
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, ValueError, UnicodeError):
        raise ValidationError("Enter a valid URL: the host name cannot be used.", code="invalid") from None
    if not parsed.host:
        raise ValidationError("Enter a valid URL with a host name.", code="no_host")
    return parsed.host.strip("[]"), parsed.port or 443


def _refuse_internal_addresses(host: str, port: int) -> None:
    """Raise ValidationError if host is, or resolves to, an address webhooks may not reach."""
    try:
        reason = blocked_reason(host)
    except ValueError:
        reason = None  # a name, not a literal address
    else:
        if reason:
            raise ValidationError(
                f"Webhooks cannot be sent to {host}: it is {reason}. Use a public HTTPS endpoint.",
                code="private_address",
            )
        return
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return  # does not resolve now: accepted, and checked again at every send
    for _family, _type, _proto, _name, sockaddr in answers:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        reason = blocked_reason(address)
        if reason:
            raise ValidationError(
                f"Webhooks cannot be sent to {host}: it resolves to {address}, {reason}. "
                "Use a public HTTPS endpoint.",
                code="private_address",
            )
