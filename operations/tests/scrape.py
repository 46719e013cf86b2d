"""Read /metrics the way Prometheus does, for tests."""

from prometheus_client.parser import text_string_to_metric_families

TOKEN = "metrics-token-for-tests"


def scrape(client) -> dict:
    """Return {(sample name, frozenset(labels)): value} from /metrics."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    """Return one sample's value, 0 when that series has not appeared yet (a counter never incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
