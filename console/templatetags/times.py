"""One rule for times on every page: a <time> in UTC, which webhooks.js shows in the viewer's zone.

The server always writes UTC with "UTC" after it, so a page without JavaScript is
unambiguous; the script rewrites the text to the viewer's local time with how long
ago it was ("3 min ago"), and keeps the UTC time in the tooltip.
"""

from datetime import UTC, datetime

from django import template
from django.utils.html import format_html

register = template.Library()

FORMATS = {
    "minutes": "%-d %b %Y, %H:%M",
    "seconds": "%-d %b %Y, %H:%M:%S",
}


@register.simple_tag
def utc_time(value: datetime | None, precision: str = "minutes") -> str:
    """Return `<time datetime=... data-local>30 Nov 2026, 08:30 UTC</time>`, or "" for no time."""
    if value is None:
        return ""
    at = value.astimezone(UTC)
    text = f"{at.strftime(FORMATS.get(precision, FORMATS['minutes']))} UTC"
    stamp = at.isoformat(timespec="seconds").replace("+00:00", "Z")
    return format_html('<time datetime="{}" data-local="{}" title="{}">{}</time>', stamp, precision, text, text)
