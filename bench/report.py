"""The one table `make bench` prints, with each target and whether this run met it."""


def _f(value, digits=1, unit="") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def _check(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "NOT MET")


def rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Return (measure, figure, target, met) rows for what this run measured."""
    out = []
    raw = results.get("raw") or {}
    peer = results.get("peer") or {}
    peer_tp = (peer.get("throughput") or {}).get("per_second")
    for key, label in (("throughput_1", "5,000 events to 1 endpoint"), ("throughput_20", "5,000 over 20 endpoints")):
        figures = results.get(key)
        if not figures:
            continue
        rate = figures["per_second"]
        ok = None
        target = ">= 60% of raw 2-proc and >= 10x peer"
        if raw.get("p2") and peer_tp:
            ok = rate >= 0.6 * raw["p2"] and rate >= 10 * peer_tp
        detail = f"{_f(rate)}/s"
        if raw.get("p2"):
            detail += f" ({rate / raw['p2']:.0%} of raw 2-proc"
            detail += f", {rate / peer_tp:.1f}x peer)" if peer_tp else ")"
        label = label.replace("5,000", f"{figures['events']:,}")
        out.append((f"throughput: {label}", detail, target, _check(ok)))
        out.append(("  CPU per delivery: worker / callers / whole machine",
                    f"{_f(figures['worker_cpu_ms_per_delivery'], 2)} / {_f(figures['emitter_cpu_ms_per_event'], 2)}"
                    f" / {_f(figures.get('machine_cpu_ms_per_delivery'), 2)} ms ({figures['emitters']} callers "
                    f"emitting {_f(figures['emit_per_second'])}/s)", "", ""))
    d = results.get("drain")
    if d:
        share = f" ({d['per_second'] / raw['p2']:.0%} of raw 2-proc)" if raw.get("p2") else ""
        out.append((f"sender alone: {d['events']:,} held, then Resume",
                    f"{_f(d['per_second'])}/s{share}, worker {_f(d['worker_cpu_ms_per_delivery'], 2)} ms "
                    "CPU/delivery", "", ""))
    out += old_vs_new(results)
    lat = results.get("latency")
    if lat:
        ok = lat["p50"] is not None and lat["p50"] <= 15 and lat["p99"] <= 60
        out.append((f"latency at {lat['rate']:g}/s (commit -> arrival)",
                    f"p50 {_f(lat['p50'])} / p95 {_f(lat['p95'])} / p99 {_f(lat['p99'])} ms",
                    "p50 <= 15 ms, p99 <= 60 ms", _check(ok)))
    cost = results.get("cost") or []
    if cost:
        same = len({c["queries"] for c in cost}) == 1 and max(c["queries"] for c in cost) <= 4
        for c in cost:
            ok = same and (c["inside_ms"] <= 2 if c["subscriptions"] == 10 else True)
            figure = f"{c['queries']} queries, {_f(c['inside_ms'], 2)} ms in tx (+{_f(c['commit_ms'], 2)} ms commit)"
            out.append((f"record_activity, {c['subscriptions']} subscriptions", figure,
                        "same queries (<= 4); <= 2 ms at 10", _check(ok)))
    calm, hang = results.get("isolation_calm"), results.get("isolation_hang")
    if calm and hang:
        ratio = hang["p99"] / calm["p99"] if calm["p99"] and hang["p99"] else None
        out.append(("isolation: healthy p99, other endpoint hanging",
                    f"{_f(hang['p99'])} ms vs {_f(calm['p99'])} ms calm (x{_f(ratio, 2)})",
                    "<= 2x", _check(ratio is not None and ratio <= 2)))
    fair = results.get("fair_share")
    if calm and fair:
        out.append((f"fair share: other organisation p50/p99, {fair['hostile']} endpoints hanging",
                    f"{_f(fair['p50'])} / {_f(fair['p99'])} ms vs {_f(calm['p50'])} / {_f(calm['p99'])} ms calm",
                    "", ""))
    log = results.get("log")
    if log:
        for key, label in (("detail", "subscription page"), ("page1", "log page 1"), ("page100", "log page 100")):
            view = log.get(f"view_{key}_ms")
            selector = log.get(f"selector_{key}_ms")
            if view is None and selector is None:
                continue
            figure = f"{_f(view)} ms" if view is not None else "view n/a"
            if selector is not None:
                figure += f" (selector {_f(selector, 2)} ms)"
            out.append((f"{label} at {log['rows']:,} deliveries", figure, "<= 50 ms", _check(
                view is not None and view <= 50)))
        for key, label in (("search_event", "log search: a whole event id, 90% deep"),
                           ("search_range", "log search: a 1-hour range, half-way"),
                           ("search_range_state_type", "log search: range + state + type"),
                           ("search_state_none_match", "log filter: a state no row has (whole index)"),
                           ("bulk_confirm_range", "bulk redeliver count: a 1-hour range")):
            view = log.get(f"view_{key}_ms")
            if view is not None:
                out.append((f"{label}, at {log['rows']:,}", f"{_f(view)} ms", "reference", ""))
    if raw:
        out.append(("raw limit: sign+POST keep-alive, 1 process", f"{_f(raw['p1'])}/s", "reference", ""))
        out.append(("raw limit: sign+POST keep-alive, 2 processes", f"{_f(raw['p2'])}/s", "reference", ""))
        out.append(("raw: new TLS connection per POST, 1 process", f"{_f(raw['fresh_p1'])}/s", "reference", ""))
        if raw.get("requests_cpu_ms"):
            ours = f" / {_f(raw['transport_cpu_ms'], 2)}" if raw.get("transport_cpu_ms") is not None else ""
            out.append(("CPU per keep-alive POST: requests (before) / urllib3 alone / our transport",
                        f"{_f(raw['requests_cpu_ms'], 2)} / {_f(raw['urllib3_cpu_ms'], 2)}{ours} ms", "reference", ""))
    if peer:
        out.append((f"peer django-webhook 0.0.15: {peer['throughput']['events']:,} events",
                    f"{_f(peer_tp)}/s", "reference", ""))
        pl = peer["latency"]
        out.append((f"peer latency at {pl['rate']:g}/s", f"p50 {_f(pl['p50'])} / p95 {_f(pl['p95'])} / "
                    f"p99 {_f(pl['p99'])} ms", "reference", ""))
    return out


def old_vs_new(results: dict) -> list[tuple[str, str, str, str]]:
    """Return rows comparing the old core's figures (same run, `--compare`) with this core's."""
    old = results.get("old_core") or {}
    out = []

    def change(before, after):
        return f" ({after / before - 1:+.0%})" if before and after else ""

    for key, label in (("throughput_1", "throughput, 1 endpoint"), ("throughput_20", "throughput, 20 endpoints"),
                       ("drain", "sender alone (backlog)")):
        a, b = old.get(key), results.get(key)
        if a and b:
            out.append((f"old -> new core: {label}",
                        f"{_f(a['per_second'])} -> {_f(b['per_second'])}/s{change(a['per_second'], b['per_second'])};"
                        f" worker {_f(a['worker_cpu_ms_per_delivery'], 2)} -> "
                        f"{_f(b['worker_cpu_ms_per_delivery'], 2)} ms CPU/delivery", "no phase > 10% slower",
                        _check(b["per_second"] >= 0.9 * a["per_second"])))
    a, b = old.get("latency"), results.get("latency")
    if a and b:
        out.append(("old -> new core: latency at 20/s p50 / p99",
                    f"{_f(a['p50'])} / {_f(a['p99'])} -> {_f(b['p50'])} / {_f(b['p99'])} ms", "p99 <= 60 ms",
                    _check(b["p99"] <= 60)))
    a = next((c for c in old.get("cost") or [] if c["subscriptions"] == 10), None)
    b = next((c for c in results.get("cost") or [] if c["subscriptions"] == 10), None)
    if a and b:
        out.append(("old -> new core: record_activity, 10 subscriptions",
                    f"{a['queries']} -> {b['queries']} queries, {_f(a['inside_ms'], 2)} -> {_f(b['inside_ms'], 2)} ms"
                    f" in tx, commit {_f(a['commit_ms'], 2)} -> {_f(b['commit_ms'], 2)} ms", "", ""))
    return out


def render(results: dict) -> str:
    """Return the machine line and the table as text."""
    m = results.get("machine", {})
    lines = [f"{m.get('date')}: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, "
             f"Python {m.get('python')}, PostgreSQL {m.get('postgresql')}, Redis {m.get('redis')}, "
             f"load {tuple(round(x, 2) for x in m.get('load_average', ()))}, "
             f"{results.get('workers')} worker process(es)"]
    table = [("measure", "figure", "target", "")] + rows(results)
    if results.get("smoke"):  # tiny sizes: the figures prove the harness, not the speed
        table = [(a, b, c, "") for a, b, c, _ in table]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for i, row in enumerate(table):
        lines.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


SHORT = ("throughput:", "sender alone", "latency at", "record_activity, 10 ", "isolation:", "log page 100",
         "raw limit: sign+POST keep-alive, 2", "peer django-webhook", "peer latency")


def markdown(results: dict, short: bool = False) -> str:
    """Return the table as Markdown, for docs/PERFORMANCE.md (short: the README's few rows)."""
    out = ["| measure | figure | target | |", "| --- | --- | --- | --- |"]
    for measure, figure, target, met in rows(results):
        if short and not measure.startswith(SHORT):
            continue
        out.append(f"| {measure.strip()} | {figure} | {target} | {met} |")
    return "\n".join(out)


if __name__ == "__main__":
    import json
    import sys

    print(markdown(json.loads(open(sys.argv[1]).read()), short="--short" in sys.argv))
