"""The bench table's rows for the receiver controls: the overhead on an unlimited endpoint against its target."""

from bench.report import controls_rows


def _cores(without: float, with_: float, p50_without: float = 6.0, p50_with: float = 6.0) -> dict:
    def core(rate, p50):
        return {"drain": {"per_second": rate, "worker_cpu_ms_per_delivery": 0.8},
                "latency": {"p50": p50, "worker_cpu_ms_per_delivery": 6.4}}

    return {"without_controls": core(without, p50_without), "with_controls": core(with_, p50_with)}


def test_a_phase_more_than_5_percent_slower_with_the_controls_is_not_met():
    rows = {measure: (figure, met) for measure, figure, _, met in controls_rows(_cores(500.0, 470.0, 6.0, 6.6))}

    assert rows["receiver controls on an unlimited endpoint: backlog"] == (
        "470.0/s with, 500.0/s without (6.4% slower; worker CPU 0.80 vs 0.80 ms per delivery)", "NOT MET")
    assert rows["receiver controls on an unlimited endpoint: steady 20/s, p50 latency"][1] == "NOT MET"  # +10 %


def test_a_faster_phase_says_so_and_is_met():
    rows = {measure: (figure, met) for measure, figure, _, met in controls_rows(_cores(500.0, 520.0))}

    figure, met = rows["receiver controls on an unlimited endpoint: backlog"]
    assert "(3.8% faster;" in figure and met == "met"


def test_the_limited_endpoint_is_met_within_2_percent_of_its_limit():
    rows = controls_rows({"controls_limited_100": {"events": 1000, "per_second": 97.9, "busiest_second": 99}})

    assert rows == [("endpoint limited to 100/s: backlog of 1,000 drained",
                     "97.9/s, busiest second at the receiver 99", "98-102/s", "NOT MET")]
