"""`python -m bench.chart [results.json] [out.png]`: docs/performance.png from a `make bench` run.

Left: deliveries per second, ours (the one-sender core, and the old core measured in the same run
with `--compare`) against the raw sign+POST limit and the peer. Right: commit-to-arrival latency at 20 events/s.
"""

import json
import sys
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

ROOT = Path(__file__).resolve().parent.parent


def chart(results: dict, out: Path) -> None:
    raw, peer, before = results.get("raw", {}), results.get("peer", {}), results.get("old_core") or {}
    bars = [
        ("raw limit\n2 processes", raw.get("p2"), "#999999"),
        ("raw limit\n1 process", raw.get("p1"), "#bbbbbb"),
        ("ours\n1 endpoint", results.get("throughput_1", {}).get("per_second"), "#2b6cb0"),
        ("ours\n20 endpoints", results.get("throughput_20", {}).get("per_second"), "#4299e1"),
        ("ours, sender\nalone (Resume)", results.get("drain", {}).get("per_second"), "#2c5282"),
        ("old core\n1 endpoint", before.get("throughput_1", {}).get("per_second"), "#90cdf4"),
        ("old core\n20 endpoints", before.get("throughput_20", {}).get("per_second"), "#bee3f8"),
        ("old core, sender\nalone (Resume)", before.get("drain", {}).get("per_second"), "#e2e8f0"),
        ("django-webhook\n0.0.15", peer.get("throughput", {}).get("per_second"), "#dd6b20"),
    ]
    bars = [b for b in bars if b[1]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 5), gridspec_kw={"width_ratios": [7, 3]})
    left.bar([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars])
    for i, (_, value, _) in enumerate(bars):
        left.text(i, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=9)
    left.set_ylabel("deliveries (POSTs) per second")
    left.set_title("Throughput, same machine, same run")
    left.tick_params(axis="x", labelsize=7.5)

    series = [("ours", results.get("latency")), ("old core", before.get("latency")),
              ("django-webhook", peer.get("latency"))]
    series = [(name, s) for name, s in series if s and s.get("p50") is not None]
    width = 0.8 / max(len(series), 1)
    colours = {"ours": "#2b6cb0", "old core": "#90cdf4", "django-webhook": "#dd6b20"}
    for i, (name, s) in enumerate(series):
        xs = [j + i * width for j in range(3)]
        right.bar(xs, [s["p50"], s["p95"], s["p99"]], width=width, label=name, color=colours[name])
    right.set_xticks([j + width * (len(series) - 1) / 2 for j in range(3)], ["p50", "p95", "p99"])
    right.axhline(60, color="#c53030", linestyle="--", linewidth=1, label="target p99 (60 ms)")
    right.axhline(15, color="#c53030", linestyle=":", linewidth=1, label="target p50 (15 ms)")
    right.set_yscale("log")
    right.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    right.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    right.set_ylabel("ms from commit to arrival (log scale)")
    rate = (results.get("latency") or {}).get("rate", 20)
    right.set_title(f"Latency at {rate:g} events/s")
    right.legend(fontsize=8)
    m = results.get("machine", {})
    fig.suptitle(f"{m.get('date')}: {m.get('cpu')}, {m.get('cores')} cores, PostgreSQL {m.get('postgresql')}, "
                 f"Redis {m.get('redis')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    source = Path(argv[0]) if argv else ROOT / "var" / "bench" / "results.json"
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "performance.png"
    chart(json.loads(source.read_text()), out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
