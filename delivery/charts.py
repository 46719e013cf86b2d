"""An endpoint's charts: attempts per hour by outcome, and attempt latency p50/p95, as server-drawn SVG.

The numbers come from two bounded, portable queries (SQLite and PostgreSQL):
the closed hours' summaries (one row an hour), and for the hours without one,
the hourly roll-up the sender writes with its attempts (delivery.attempt_hours):
counts per UTC hour and the exact nearest-rank p50 and p95 per hour picked with
window functions over counts per duration, so no attempt is read at all. The drawing is
plain geometry for the template (`subscriptions/_charts.html`): no script, no
inline style, colours from classes in app.css. The marks repeated per hour
(bars, dots, the data table's rows) are joined here with format_html_join, which
escapes as the template would: through the template language, 168 hours' worth
took 35-65 ms a page.
"""

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db.models import Case, Exists, F, OuterRef, Q, Sum, Value, When, Window
from django.db.models.functions import Ceil
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from delivery import attempt_hours
from delivery.models import AttemptHour, HourSummary
from subscriptions.models import Subscription

RANGES = {"24h": (timedelta(hours=24), "24 hours"), "7d": (timedelta(days=7), "7 days")}
DEFAULT_RANGE = "24h"
PERCENTILES = (50, 95)

# The drawing's box (SVG user units; the SVG scales to its container).
# About the width a chart gets on a desktop, so its 12-unit labels show at about 12 px.
WIDTH, HEIGHT = 540, 220
# The 7 days' 168 hours get a chart of the whole panel's width, so each bar shows at 4 px or more.
WIDE = 1040
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 12, 28
X_LABEL_ROOM = 40


@dataclass
class Hour:
    start: datetime
    succeeded: int = 0
    http_failed: int = 0  # answered with a status outside 2xx
    no_answer: int = 0  # timed out, refused, TLS, DNS...
    p50_ms: int | None = None
    p95_ms: int | None = None

    @property
    def total(self) -> int:
        return self.succeeded + self.http_failed + self.no_answer


def chart_range(value: str | None) -> str:
    """Return a known range key ("24h" or "7d"); anything else means the default."""
    return value if value in RANGES else DEFAULT_RANGE


def _hour_floor(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def endpoint_hours(*, subscription: Subscription, range_key: str, now: datetime | None = None) -> list[Hour]:
    """Return one Hour per UTC hour of the range, oldest first, the current hour last (two queries).

    Closed hours come from their summaries (HourSummary, one row an hour); the hours without one
    (the open ones, and any closed since closed_hours_summarise last ran) from the roll-up
    (AttemptHour), never the attempts. A read writes nothing.
    """
    span, _ = RANGES[range_key]
    now = now or timezone.now()
    end = _hour_floor(now) + timedelta(hours=1)
    start = end - span
    starts = [start + timedelta(hours=i) for i in range(int(span / timedelta(hours=1)))]
    hours = {at: Hour(start=at) for at in starts}
    summarised = set()
    for s in HourSummary.objects.filter(subscription=subscription, hour__gte=start, hour__lt=end):
        h = hours.get(_hour_floor(s.hour))
        if h is not None:
            h.succeeded, h.http_failed, h.no_answer, h.p50_ms, h.p95_ms = (
                s.succeeded, s.http_failed, s.no_answer, s.p50_ms, s.p95_ms)
            summarised.add(h.start)
    unsummarised = [at for at in starts if at not in summarised]
    if not unsummarised:
        return list(hours.values())
    rows = AttemptHour.objects.filter(subscription=subscription, hour__in=unsummarised)
    for summed in _from_roll_up(rows).values():
        if summed.start in hours:
            hours[summed.start] = summed
    return list(hours.values())


def closed_hours_summarise(*, now: datetime | None = None) -> int:
    """Sum up every endpoint's closed hours of the last 7 days that have attempts and no summary yet (in two
    queries, whatever the number of endpoints); return how many summaries were stored.

    The periodic task (delivery.tasks.summarise_closed_hours, CELERY_BEAT_SCHEDULE) runs it, so the
    charts read at most the hours since its last run from the roll-up. An hour is closed once it ended
    attempt_hours.SETTLE ago.
    """
    now = now or timezone.now()
    closed_before = _hour_floor(now - attempt_hours.SETTLE)  # hours that start before it ended SETTLE ago
    start = _hour_floor(now) + timedelta(hours=1) - RANGES["7d"][0]
    summarised = HourSummary.objects.filter(subscription=OuterRef("subscription"), hour=OuterRef("hour"))
    rows = AttemptHour.objects.filter(hour__gte=start, hour__lt=closed_before).filter(~Exists(summarised))
    summaries = [HourSummary(subscription_id=subscription_id, hour=at, succeeded=h.succeeded,
                             http_failed=h.http_failed, no_answer=h.no_answer, p50_ms=h.p50_ms, p95_ms=h.p95_ms)
                 for (subscription_id, at), h in _from_roll_up(rows).items()]
    attempt_hours.hour_summaries_save(summaries)
    return len(summaries)


def _from_roll_up(rows) -> dict[tuple, Hour]:
    """Sum up these roll-up rows in one query: {(subscription id, hour): Hour} with each hour's counts and exact
    p50/p95, for the hours that had attempts.

    Nearest rank over the counts: the smallest duration with at least p % of the hour's attempts at or
    under it, i.e. the row whose running count (by duration) first reaches ceil(n * p / 100). The query
    returns just those rows, with their hour's sums by outcome; a row that is both percentiles is named p50
    (p95 is then the same).
    """
    total = F("succeeded") + F("http_failed") + F("no_answer")
    by_hour = [F("subscription"), F("hour")]
    ranked = rows.annotate(
        count=total,
        n=Window(Sum(total), partition_by=by_hour),
        running=Window(Sum(total), partition_by=by_hour, order_by=[F("duration_ms").asc()]),
        ok=Window(Sum("succeeded"), partition_by=by_hour),
        http=Window(Sum("http_failed"), partition_by=by_hour),
        none=Window(Sum("no_answer"), partition_by=by_hour),
    )
    pick = Case(*[When(Q(running__gte=Ceil(F("n") * p / 100.0), running__lt=Ceil(F("n") * p / 100.0) + F("count")),
                       then=Value(p)) for p in PERCENTILES], default=Value(0))
    filled = {}
    for subscription_id, at, p, ms, ok, http, none in (
            ranked.annotate(pick=pick).filter(pick__gt=0)
            .values_list("subscription", "hour", "pick", "duration_ms", "ok", "http", "none")):
        h = filled.setdefault((subscription_id, at), Hour(start=_hour_floor(at)))
        setattr(h, f"p{p}_ms", ms)
        h.succeeded, h.http_failed, h.no_answer = ok, http, none
    for h in filled.values():
        if h.p95_ms is None:
            h.p95_ms = h.p50_ms  # one duration held both percentiles
    return filled


# --- the drawing -----------------------------------------------------------------

def _nice_max(value: float) -> float:
    """Return the smallest 1, 2 or 5 x 10^k at or above value (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


@dataclass
class Chart:
    """Geometry of one chart, in SVG user units, and its words for screen readers."""

    slug: str  # the ids of its <title> and <desc>
    title: str
    desc: str
    legend: list = field(default_factory=list)  # (css class, label)
    y_ticks: list = field(default_factory=list)  # (y, label)
    x_ticks: list = field(default_factory=list)  # (x, label)
    bars: list = field(default_factory=list)  # (x, y, width, height, css class, its value in words for hover)
    # An hour's bars together, focusable (its words, with the counts, are its accessible name): (words, bars).
    hours: list = field(default_factory=list)
    lines: list = field(default_factory=list)  # (points "x,y x,y", css class)
    dots: list = field(default_factory=list)  # (x, y, css class)
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_bottom: int = HEIGHT - BOTTOM
    marks: str = ""  # hours, lines and dots as SVG markup (endpoint_charts)


def _width(hours: list[Hour]) -> int:
    return WIDE if len(hours) > 24 else WIDTH


def _duration(ms: float) -> str:
    return f"{ms / 1000:g} s" if ms >= 1000 else f"{ms:g} ms"


def _axes(chart: Chart, hours: list[Hour], top: float, label) -> None:
    plot_h = HEIGHT - TOP - BOTTOM
    chart.y_ticks = [(round(TOP + plot_h * (1 - f), 1), label(top * f)) for f in (0, 0.5, 1)]
    step = 6 if len(hours) <= 24 else 24
    width = chart.width = _width(hours)
    chart.plot_right = width - RIGHT
    slot = (width - LEFT - RIGHT) / len(hours)
    chart.x_ticks = [
        (round(LEFT + i * slot, 1), h.start.strftime("%H:%M") if step == 6 else h.start.strftime("%a %-d"))
        for i, h in enumerate(hours)
        if h.start.hour % step == 0 and LEFT + i * slot < width - RIGHT - X_LABEL_ROOM  # a label that fits
    ]


def _outcome_chart(hours: list[Hour], label: str) -> Chart:
    total = sum(h.total for h in hours)
    ok, http, none = (sum(h.succeeded for h in hours), sum(h.http_failed for h in hours),
                      sum(h.no_answer for h in hours))
    desc = (f"Over the last {label}: {total} attempt{'s' if total != 1 else ''}, {ok} succeeded, "
            f"{http} failed with an HTTP status and {none} got no answer.")
    if total:
        busiest = max(hours, key=lambda h: h.total)
        desc += f" The busiest hour, {busiest.start:%-d %b %H:%M} UTC, had {busiest.total}."
    chart = Chart(slug="chart-outcomes", title=f"Attempts per hour by outcome, last {label}", desc=desc,
                  legend=[("ok", "Succeeded (2xx)"), ("http", "Failed with an HTTP status"),
                          ("none", "Failed with no answer (timeout, refused, TLS, DNS)")])
    top = _nice_max(max((h.total for h in hours), default=0))
    _axes(chart, hours, top, lambda n: f"{n:g}")
    slot = (chart.width - LEFT - RIGHT) / len(hours)
    scale = (HEIGHT - TOP - BOTTOM) / top
    for i, h in enumerate(hours):
        base = HEIGHT - BOTTOM
        x = round(LEFT + i * slot + slot * 0.1, 2)
        bars, parts = [], []
        for count, css, words in ((h.succeeded, "ok", "succeeded"),
                                  (h.http_failed, "http", "failed with an HTTP status"),
                                  (h.no_answer, "none", "got no answer")):
            if count:
                height = count * scale
                base -= height
                tip = f"{h.start:%-d %b %Y, %H:%M} UTC: {count} {words}"
                bars.append((x, round(base, 2), round(slot * 0.8, 2), round(height, 2), css, tip))
                parts.append(f"{count} {words}")
        if bars:
            chart.bars += bars
            plural = "s" if h.total != 1 else ""
            chart.hours.append((f"{h.start:%-d %b %Y, %H:%M} UTC: {h.total} attempt{plural}, {', '.join(parts)}", bars))
    return chart


def _latency_chart(hours: list[Hour], label: str) -> Chart:
    timed = [h for h in hours if h.p50_ms is not None]
    if timed:
        p50s, p95s = [h.p50_ms for h in timed], [h.p95_ms for h in timed]
        desc = (f"Over the last {label}, hour by hour: the median attempt took {min(p50s):,} to {max(p50s):,} ms; "
                f"the 95th percentile reached {max(p95s):,} ms.")
    else:
        desc = f"No attempts in the last {label}."
    chart = Chart(slug="chart-latency", title=f"Attempt latency per hour, p50 and p95, last {label}", desc=desc,
                  legend=[("p50", "p50 (median)"), ("p95", "p95")])
    top = _nice_max(max((h.p95_ms or 0 for h in hours), default=0))
    _axes(chart, hours, top, _duration)
    slot = (chart.width - LEFT - RIGHT) / len(hours)
    scale = (HEIGHT - TOP - BOTTOM) / top
    for name in ("p50", "p95"):
        run: list[str] = []
        for i, h in enumerate([*hours, None]):
            value = getattr(h, f"{name}_ms") if h is not None else None
            if value is None:
                if len(run) > 1:
                    chart.lines.append((" ".join(run), name))
                run = []
                continue
            x, y = round(LEFT + (i + 0.5) * slot, 2), round(HEIGHT - BOTTOM - value * scale, 2)
            run.append(f"{x},{y}")
            chart.dots.append((x, y, name))
    return chart


_BAR = '<rect class="chart__bar chart__bar--{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>'
_HOUR = '<g class="chart__hour" role="img" aria-label="{}" tabindex="{}" data-chart-hour>{}</g>'
_ROW = ('<tr><th scope="row" data-label="Hour (UTC)">{}</th><td data-label="Succeeded">{}</td>'
        '<td data-label="Failed, HTTP">{}</td><td data-label="No answer">{}</td><td data-label="p50">{} ms</td>'
        '<td data-label="p95">{} ms</td></tr>\n')


def _marks(chart: Chart) -> SafeString:
    """The chart's hour groups of bars, lines and dots as SVG markup (escaped), in the template's order."""
    groups = format_html_join("", _HOUR, (
        (words, "0" if i == 0 else "-1",
         format_html_join("", _BAR, ((css, x, y, w, h, tip) for x, y, w, h, css, tip in bars)))
        for i, (words, bars) in enumerate(chart.hours)))
    lines = format_html_join("", '<polyline class="chart__line chart__line--{}" points="{}"/>',
                             ((css, points) for points, css in chart.lines))
    dots = format_html_join("", '<circle class="chart__dot chart__dot--{}" cx="{}" cy="{}" r="2.5"/>',
                            ((css, x, y) for x, y, css in chart.dots))
    return groups + lines + dots


def _table_rows(rows: list[Hour]) -> SafeString:
    return format_html_join("", _ROW, ((f"{h.start.day} {h.start:%b %H:%M}", h.succeeded, h.http_failed,
                                        h.no_answer, h.p50_ms, h.p95_ms) for h in rows))


def endpoint_charts(*, hours: list[Hour], range_key: str) -> dict:
    """Return the two charts' geometry and marks, the hours that had attempts (the data table, and its rows'
    markup) and the range's words."""
    _, label = RANGES[range_key]
    figures = [_outcome_chart(hours, label), _latency_chart(hours, label)]
    for chart in figures:
        chart.marks = _marks(chart)
    rows = [h for h in hours if h.total]
    return {
        "figures": figures,
        "rows": rows,
        "table_rows": _table_rows(rows),
        "label": label,
        "wide": len(hours) > 24,
        "ranges": [(key, words) for key, (_, words) in RANGES.items()],
    }
