"""Validation of endpoint URLs, shared by the form, the command and the model."""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

MAX_URL_LENGTH = 2048

_url_syntax = URLValidator(schemes=["https"])


def validate_endpoint_url(url: str) -> None:
    """Raise ValidationError unless url is an HTTPS URL with a host and no credentials."""
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
