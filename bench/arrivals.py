"""Figures of what a receiver saw, as plain functions of arrival times: the bench's and the tests' one copy."""


def percentile(values: list[float], p: float) -> float:
    """Return the p-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def busiest_second(times: list[float]) -> int:
    """Return the most arrivals in any one-second window (every window that starts at an arrival)."""
    times = sorted(times)
    most, j = 0, 0
    for i, start in enumerate(times):
        while j < len(times) and times[j] < start + 1.0:
            j += 1
        most = max(most, j - i)
    return most
