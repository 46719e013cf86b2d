"""The one table `make bench` prints, with each target and whether this run met it."""


def _f(value, digits=1, unit="") -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def _check(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "NOT MET")


def _ratio(a, b):
    return a / b if a and b else None


def sender_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Return the sender's figures of issue 17 beside the old core's, the core before it and the peer's."""
    out = []
    old, before = results.get("old_core") or {}, results.get("before") or {}
    peer_tp = ((results.get("peer") or {}).get("throughput") or {}).get("per_second")
    for key, label in (("throughput_1", "5,000 events to 1 endpoint"), ("throughput_20", "5,000 over 20 endpoints"),
                       ("drain", "backlog: 5,000 held, then Resume")):
        figures = results.get(key)
        if not figures:
            continue
        rate = figures["per_second"]
        vs_old = _ratio(rate, (old.get(key) or {}).get("per_second"))
        vs_peer = _ratio(rate, peer_tp)
        detail = f"{_f(rate)}/s"
        if (before.get(key) or {}).get("per_second"):
            detail += f"; before {_f(before[key]['per_second'])}/s"
        if vs_old is not None:
            detail += f"; old core {_f(old[key]['per_second'])}/s (x{_f(vs_old, 2)})"
        if vs_peer is not None:
            detail += f"; peer {_f(peer_tp)}/s (x{_f(vs_peer)})"
        ok = None if vs_old is None or vs_peer is None else vs_old >= 1.25 and vs_peer >= 10
        label = label.replace("5,000", f"{figures['events']:,}")
        out.append((f"throughput: {label}", detail, ">= 1.25x old core, >= 10x peer", _check(ok)))
    cpu = {key: (results.get(key) or {}).get("worker_cpu_ms_per_delivery")
           for key in ("throughput_1", "throughput_20", "drain", "latency")}
    for key, label, limit in (("throughput_1", "worker CPU per delivery: burst to 1 endpoint", 0.5),
                              ("drain", "worker CPU per delivery: backlog", 0.5),
                              ("throughput_20", "worker CPU per delivery: burst over 20 endpoints", None),
                              ("latency", "worker CPU per delivery: steady 20 events/s", None)):
        if cpu[key] is None:
            continue
        detail = f"{_f(cpu[key], 2)} ms"
        for name, scope in (("before", before), ("old core", old)):
            theirs = (scope.get(key) or {}).get("worker_cpu_ms_per_delivery")
            if theirs is not None:
                detail += f"; {name} {_f(theirs, 2)} ms"
        if key == "latency":
            burst = max(c for c in (cpu["throughput_1"], cpu["drain"]) if c is not None) if (
                cpu["throughput_1"] or cpu["drain"]) else None
            target, ok = "<= 2x the burst's, <= 1.0 ms", None
            if burst is not None:
                ok = cpu[key] <= 2 * burst and cpu[key] <= 1.0
                detail += f" ({_f(cpu[key] / burst, 1)}x the burst's)"
        else:
            target = f"<= {limit} ms" if limit else ""
            ok = cpu[key] <= limit if limit else None
        out.append((label, detail, target, _check(ok)))
    lat, old_lat = results.get("latency"), old.get("latency")
    if lat and lat.get("p50") is not None:
        detail = f"p50 {_f(lat['p50'])} / p99 {_f(lat['p99'])} ms"
        ok = None
        if (before.get("latency") or {}).get("p50") is not None:
            detail += f"; before {_f(before['latency']['p50'])} / {_f(before['latency']['p99'])} ms"
        if old_lat and old_lat.get("p50") is not None:
            detail += f"; old core {_f(old_lat['p50'])} / {_f(old_lat['p99'])} ms"
            ok = lat["p50"] <= old_lat["p50"] and lat["p99"] <= old_lat["p99"]
        out.append((f"latency at {lat['rate']:g}/s, commit to arrival", detail, "p50 and p99 <= old core's",
                    _check(ok)))
    cost = next((c for c in results.get("cost") or [] if c["subscriptions"] == 10), None)
    if cost:
        detail = (f"{cost['queries']} statements, {_f(cost['inside_ms'], 2)} ms in tx "
                  f"(+{_f(cost['commit_ms'], 2)} commit)")
        for name, scope in (("before", before), ("old core", old)):
            theirs = next((c for c in scope.get("cost") or [] if c["subscriptions"] == 10), None)
            if theirs:
                detail += f"; {name} {theirs['queries']}, {_f(theirs['inside_ms'], 2)} ms"
        out.append(("record_activity at 10 subscriptions", detail, "<= 2 statements, <= 1 ms in its transaction",
                    _check(cost["queries"] <= 2 and cost["inside_ms"] <= 1.0)))
    return out


# No phase of the sender more than this much slower (%) with the receiver controls, on an endpoint that uses none.
CONTROLS_OVERHEAD_MAX = 5.0


def controls_rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Return the receiver controls' rows: an ordered endpoint, one limited to 100/s, and what the controls cost an
    unlimited endpoint (their merge against the commit before it, phase by phase, in this run)."""
    out = []
    ordered, limited = results.get("controls_ordered"), results.get("controls_limited_100")
    if ordered:
        out.append((f"ordered endpoint: backlog of {ordered['events']:,} drained",
                    f"{_f(ordered['per_second'])}/s, in recording order: {ordered['in_recording_order']}",
                    "one request in flight", _check(ordered["in_recording_order"])))
    if limited:
        rate = limited["per_second"]
        out.append((f"endpoint limited to 100/s: backlog of {limited['events']:,} drained",
                    f"{_f(rate)}/s, busiest second at the receiver {limited.get('busiest_second', 'n/a')}",
                    "98-102/s", _check(98 <= rate <= 102)))
    without, with_ = results.get("without_controls") or {}, results.get("with_controls") or {}
    for key, label in (("throughput_1", "burst to 1 endpoint"), ("throughput_20", "burst over 20 endpoints"),
                       ("drain", "backlog"), ("latency", "steady 20/s, p50 latency")):
        a, b = without.get(key) or {}, with_.get(key) or {}
        if key == "latency":
            before, after = a.get("p50"), b.get("p50")
            slower = (after / before - 1) * 100 if before and after else None
            figure = f"p50 {_f(after)} ms with, {_f(before)} ms without"
        else:
            before, after = a.get("per_second"), b.get("per_second")
            slower = (before / after - 1) * 100 if before and after else None
            figure = f"{_f(after)}/s with, {_f(before)}/s without"
        if slower is None:
            continue
        cpu_a, cpu_b = a.get("worker_cpu_ms_per_delivery"), b.get("worker_cpu_ms_per_delivery")
        change = f"{_f(slower, 1)}% slower" if slower >= 0 else f"{_f(-slower, 1)}% faster"
        figure += f" ({change}; worker CPU {_f(cpu_b, 2)} vs {_f(cpu_a, 2)} ms per delivery)"
        out.append((f"receiver controls on an unlimited endpoint: {label}", figure,
                    f"<= {CONTROLS_OVERHEAD_MAX:g}% slower", _check(slower <= CONTROLS_OVERHEAD_MAX)))
    return out


def statements_markdown(results: dict) -> str:
    """Return the statements-per-delivery table (this core and the one before it) as Markdown."""
    lines = ["| mode | statements / delivery | round trips / delivery | before: statements | before: round trips |",
             "| --- | --- | --- | --- | --- |"]
    ours, before = results.get("statements") or {}, (results.get("before") or {}).get("statements") or {}
    for mode, label in (("burst", "burst (200 events, then one message)"), ("backlog", "backlog (held, then Resume)"),
                        ("trickle", "trickle (each event finds the sender idle)")):
        a, b = ours.get(mode) or {}, before.get(mode) or {}
        lines.append(f"| {label} | {_f(a.get('statements'), 2)} | {_f(a.get('round_trips'), 2)} | "
                     f"{_f(b.get('statements'), 2)} | {_f(b.get('round_trips'), 2)} |")
    a, b = ours.get("caller") or {}, before.get("caller") or {}
    lines.append(f"| caller: record_activity in its transaction + on commit | {a.get('in_transaction', 'n/a')} + "
                 f"{a.get('on_commit', 'n/a')} | {a.get('round_trips', 'n/a')} | {b.get('in_transaction', 'n/a')} + "
                 f"{b.get('on_commit', 'n/a')} | {b.get('round_trips', 'n/a')} |")
    return "\n".join(lines)


def profiles_markdown(results: dict) -> str:
    """Return the ten functions with the most self time per profiled phase, this core and the one before."""
    out = []
    for label, scope in (("after", results), ("before", results.get("before") or {})):
        for phase, profile in sorted((scope.get("profiles") or {}).items()):
            out.append(f"**{label}, {phase}** (share of the worker's GIL samples)\n")
            out.append("| function | self |\n| --- | --- |")
            out.extend(f"| `{name}` | {share:.1%} |" for name, share in profile["top"])
            out.append("")
    return "\n".join(out)


LOG_PAGES = (  # bench.log_scale's pages: (key, label)
    ("detail", "subscription page (24 h charts)"), ("detail_7d", "subscription page, 7 d charts"),
    ("page1", "log page 1"), ("page100", "log page 100"),
    ("search_event", "log search: a whole event id, 90% deep"),
    ("search_range", "log search: a 1-hour range, half-way"),
    ("search_state", "log filter: state failed"), ("search_type", "log filter: type order.created"),
    ("search_range_state_type", "log search: range + state + type"),
    ("search_state_none_match", "log filter: a state no row has"),
    ("bulk_confirm_range", "bulk redeliver count: a 1-hour range"), ("bulk_confirm_all", "bulk redeliver count: all"),
    ("bulk_confirm_state", "bulk redeliver count: state failed"),
    ("list_cards", "Webhooks list, cards"), ("list_table", "Webhooks list, table"),
)


def _mb(sizes: dict) -> str:
    return f"{sum(t['total'] for t in sizes.values()) / 2**20:,.0f} MB"


def _retention_rows(retention: dict) -> list[tuple[str, str, str, str]]:
    """Sending alone and while prune_deliveries runs, the longest lock wait, sizes over the cycles."""
    out = []
    for i, cycle in enumerate(retention["cycles"], 1):
        slower = cycle["slowdown_percent"]
        what = f"a day ({retention['per_day']:,}) of a {retention['rows']:,}-delivery log" if "per_day" in retention \
            else f"{retention['rows']:,} old deliveries"
        out.append((f"retention {i}: sending alone at the same moment / while pruning {what}, the stage it "
                    "slowed the most (medians of its pairs)",
                    f"{_f(cycle['baseline_per_second'])}/s / "
                    f"{_f(cycle['pruning_per_second'])}/s "
                    f"({_f(slower)}% slower in {cycle['slowest_stage']}; "
                    f"prune {_f(cycle['prune_seconds'])} s)",
                    "<= 20% slower", _check(slower is not None and slower <= 20)))
        out.append((f"retention {i}: prune_deliveries --dry-run (what the prune then removed)",
                    f"{_f(cycle['dry_run_seconds'], 2)} s ({cycle['dry_run']['deliveries']:,} deliveries, "
                    f"{cycle['dry_run']['events']:,} events)", "", ""))
        out.append((f"retention {i}: longest lock wait a statement saw while pruning",
                    f"{_f(cycle['longest_lock_wait_s'], 3)} s", "<= 1 s", _check(cycle["longest_lock_wait_s"] <= 1)))
    sizes = " -> ".join(f"{_mb(c['after_fill'])} / {_mb(c['after_prune'])}" for c in retention["cycles"])
    if "after_first_fill" in retention:
        sizes = f"{_mb(retention['after_first_fill'])}: " + sizes
    pruned = [sum(t["total"] for t in c["after_prune"].values()) for c in retention["cycles"]]
    # Flat: after the last prune, at most a tenth more than after the first.
    out.append(("retention: log tables after each fill / prune", sizes, "flat (+10 % at most)",
                _check(pruned[-1] <= pruned[0] * 1.1)))
    return out


def rows(results: dict) -> list[tuple[str, str, str, str]]:
    """Return (measure, figure, target, met) rows for what this run measured."""
    out = sender_rows(results) + controls_rows(results)
    raw = results.get("raw") or {}
    peer = results.get("peer") or {}
    peer_tp = (peer.get("throughput") or {}).get("per_second")
    for key in ("throughput_1", "throughput_20"):
        figures = results.get(key)
        if figures:
            out.append((f"  {key}: CPU per delivery: worker / callers / whole machine",
                        f"{_f(figures['worker_cpu_ms_per_delivery'], 2)} / {_f(figures['emitter_cpu_ms_per_event'], 2)}"
                        f" / {_f(figures.get('machine_cpu_ms_per_delivery'), 2)} ms ({figures['emitters']} callers "
                        f"emitting {_f(figures['emit_per_second'])}/s)", "", ""))
    lat = results.get("latency")
    if lat and lat.get("p50") is not None:
        out.append((f"latency at {lat['rate']:g}/s (commit -> arrival), p95 and max",
                    f"p95 {_f(lat['p95'])} / max {_f(lat.get('max'))} ms", "", ""))
    for c in results.get("cost") or []:
        if c["subscriptions"] != 10:
            figure = f"{c['queries']} statements, {_f(c['inside_ms'], 2)} ms in tx (+{_f(c['commit_ms'], 2)} commit)"
            out.append((f"record_activity at {c['subscriptions']} subscriptions", figure, "", ""))
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
    for key, store in (("log", ""), ("log_sqlite", " (SQLite)")):
        log = results.get(key)
        if not log:
            continue
        for page, label in LOG_PAGES:
            view = log.get(f"view_{page}_ms")
            selector = log.get(f"selector_{page}_ms")
            if view is None and selector is None:
                continue
            figure = f"{_f(view)} ms" if view is not None else "view n/a"
            if selector is not None:
                figure += f" (selector {_f(selector, 2)} ms)"
            at = (f"{log.get('list_subscriptions', 0):,} subscriptions" if page.startswith("list_")
                  else f"{log['rows']:,} deliveries")
            out.append((f"{label} at {at}{store}", figure, "<= 50 ms", _check(view is not None and view <= 50)))
    log = results.get("log")
    disk = (log or {}).get("disk")
    if disk:
        out.append(("bytes on disk: a typical delivery (event, one attempt, roll-up share)",
                    f"{_f(disk['typical_delivery_with_event_and_attempt'], 0)} B", "reference", ""))
        for key, label in (("attempt_64kb_json", "JSON-like"), ("attempt_64kb_random", "incompressible")):
            out.append((f"bytes on disk: an attempt with a 64 KB {label} answer",
                        f"{_f(disk[key]['total'], 0)} B (TOAST {_f(disk[key]['toast'], 0)} B)", "reference", ""))
    retention = results.get("retention")
    if retention and retention.get("cycles"):
        out.extend(_retention_rows(retention))
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


SHORT = ("throughput:", "worker CPU", "latency at 20/s, commit", "record_activity at 10 ", "isolation:",
         "log page 100", "raw limit: sign+POST keep-alive, 2", "peer django-webhook", "peer latency")


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
