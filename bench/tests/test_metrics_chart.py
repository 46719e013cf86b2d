"""The metrics chart's arithmetic: the percentile from histogram buckets, as Prometheus computes it."""

import math

import pytest

from bench.metrics_chart import _quantile, chart


def test_the_quantile_interpolates_inside_the_bucket_that_holds_the_rank():
    # 100 observations: 50 under 0.1 s, 40 more under 0.25 s, 10 more under 0.5 s.
    buckets = [(0.1, 50.0), (0.25, 90.0), (0.5, 100.0), (math.inf, 100.0)]
    assert _quantile(0.5, buckets) == pytest.approx(0.1)
    assert _quantile(0.95, buckets) == pytest.approx(0.25 + 0.25 * 5 / 10)
    assert _quantile(0.25, buckets) == pytest.approx(0.05)


def test_a_quantile_in_the_open_bucket_is_its_lower_bound_and_none_without_observations():
    assert _quantile(0.99, [(1.0, 10.0), (math.inf, 20.0)]) == 1.0
    assert math.isnan(_quantile(0.95, [(1.0, 0.0), (math.inf, 0.0)]))


def test_the_chart_is_drawn_from_scraped_samples(tmp_path):
    bucket = "webhooks_attempt_duration_seconds_bucket,le="
    samples = [{"t": float(i), "webhooks_deliveries_due": 3.0, "webhooks_oldest_due_delivery_age_seconds": 1.0,
                "webhooks_breakers_open": 0.0, "webhooks_subscriptions_paused": 0.0,
                "webhooks_attempts_total,error_kind=none,outcome=succeeded": 4.0 * i,
                "webhooks_attempts_total,error_kind=http_5xx,outcome=retrying": 1.0 * i,
                f"{bucket}0.1": 4.0 * i, f"{bucket}+Inf": 5.0 * i,
                "webhooks_heartbeat_age_seconds,role=worker": i % 5,
                "webhooks_heartbeat_age_seconds,role=scheduler": i % 5} for i in range(20)]
    out = tmp_path / "metrics.png"
    chart({"samples": samples}, out)
    assert out.read_bytes().startswith(b"\x89PNG")
