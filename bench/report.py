#!/usr/bin/env python3
"""Parsing and aggregation for bench/run (Python 3.11, standard library only).

Subcommands (bench/run calls them; they are plain enough to call by hand on a results folder):

  report.py record --samples FILE --case NAME --rep N --mode closed --wrk WRK_OUTPUT [key=value ...]
  report.py record --samples FILE --case NAME --rep N --mode open --rate RPS --oha OHA_JSON [key=value ...]
      Parse one load-generator run and append one JSON line (a "sample") to FILE. key=value pairs
      carry what bench/run measured around the run: CPU ticks and RSS of the proxy processes, etc.
      Values with commas become lists (one entry per proxy process).

  report.py summarize --samples FILE --meta META_JSON --out-dir DIR [--baseline direct]
      Median over repetitions per case (and per rate for open loop), min/max as the noise band,
      ratios against the baseline case; writes DIR/results.md and DIR/results.json and prints the
      Markdown.

  report.py last --samples FILE
      One line about the last sample (bench/run logs it as it goes).

  report.py meta --out FILE [key=value ...]
      Write the run's parameters (machine, tools, connections, durations, pinning) as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

PERCENTILES = ("p50", "p90", "p99", "p99.9")


# ---------------------------------------------------------------------------------------------
# key=value parsing


def parse_value(text: str, lists: bool = True) -> Any:
    if lists and "," in text:
        return [parse_value(part) for part in text.split(",") if part != ""]
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def parse_pairs(pairs: list[str], lists: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"report.py: expected key=value, got {pair!r}")
        out[key] = parse_value(value, lists)
    return out


def as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------------------------
# load generators


def parse_wrk(path: Path) -> dict[str, Any]:
    """The WRK_JSON line printed by bench/wrk-report.lua, in wrk's units (microseconds)."""
    text = path.read_text(errors="replace")
    for line in text.splitlines():
        if line.startswith("WRK_JSON "):
            raw = json.loads(line[len("WRK_JSON "):])
            break
    else:
        raise SystemExit(f"report.py: no WRK_JSON line in {path} (did wrk fail?):\n{text[-2000:]}")
    seconds = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    errors = raw["errors"]
    return {
        "requests": raw["requests"],
        "duration_s": seconds,
        "rps": raw["requests"] / seconds if seconds > 0 else 0.0,
        "latency_ms": {p: lat[p] / 1000.0 for p in PERCENTILES} | {"mean": lat["mean"] / 1000.0, "max": lat["max"] / 1000.0},
        "errors": sum(errors.values()),
        "errors_detail": errors,
    }


def parse_oha(path: Path) -> dict[str, Any]:
    """oha's JSON output (`--output-format json`); latencies there are in seconds."""
    raw = json.loads(path.read_text())
    summary = raw.get("summary", {})
    pct = raw.get("latencyPercentiles", {})
    statuses = raw.get("statusCodeDistribution", {}) or {}
    ok = sum(int(n) for code, n in statuses.items() if str(code).startswith("2"))
    total = sum(int(n) for n in statuses.values())
    # oha -z cancels the requests still in flight when the duration ends and counts them as
    # "aborted due to deadline": an artefact of stopping, not a failure of the path under test.
    failures = {k: int(n) for k, n in (raw.get("errorDistribution", {}) or {}).items()}
    aborted = failures.pop("aborted due to deadline", 0)
    errors = sum(failures.values()) + (total - ok)
    seconds = float(summary.get("total") or 0.0)

    def ms(key: str) -> float | None:
        value = pct.get(key)
        return None if value is None else float(value) * 1000.0

    return {
        "requests": total,
        "duration_s": seconds,
        "rps": float(summary.get("requestsPerSec") or 0.0),
        "latency_ms": {"p50": ms("p50"), "p90": ms("p90"), "p99": ms("p99"), "p99.9": ms("p99.9"),
                       "mean": (summary.get("average") or 0.0) * 1000.0,
                       "max": (summary.get("slowest") or 0.0) * 1000.0},
        "errors": errors,
        "errors_detail": failures | {"non_2xx": total - ok},
        "aborted_at_deadline": aborted,
    }


# ---------------------------------------------------------------------------------------------
# record


def derive(sample: dict[str, Any], extra: dict[str, Any]) -> None:
    """CPU seconds per 10k requests and RSS from what bench/run sampled in /proc.

    With several proxies in a case (two hops), CPU and RSS are summed over them (the cost of the
    path); the `_each` lists and `proxy_names` keep them per proxy, in bench/run's PROXY_PIDS order.
    """
    clk = float(extra.get("clk_tck", 100))
    requests = sample["requests"]
    window = float(extra.get("cpu_window_s") or sample["duration_s"] or 0)
    per10k = (lambda s: s / requests * 10_000 if requests else None)
    util = (lambda s: s / window if window else None)
    for who in ("proxy", "backend"):
        ticks = as_list(extra.get(f"{who}_cpu_ticks"))
        if not ticks:
            continue
        seconds = sum(ticks) / clk
        sample[f"{who}_cpu_s"] = seconds
        sample[f"{who}_cpu_s_per_10k"] = per10k(seconds)
        sample[f"{who}_cpu_util"] = util(seconds)
        if who == "proxy":
            sample["proxy_cpu_s_per_10k_each"] = [per10k(t / clk) for t in ticks]
            sample["proxy_cpu_util_each"] = [util(t / clk) for t in ticks]
    count = 0
    for key in ("proxy_rss_idle_kb", "proxy_rss_peak_kb", "proxy_rss_after_kb"):
        values = as_list(extra.get(key))
        if values:
            count = max(count, len(values))
            sample[key] = values
            # The largest proxy, and the sum over the proxies (the path's memory).
            sample[key.replace("_kb", "_max_mb")] = max(values) / 1024.0
            sample[key.replace("_kb", "_sum_mb")] = sum(values) / 1024.0
    if count:
        names = [str(n) for n in as_list(extra.get("proxy_names"))]
        if len(names) != count:
            names = [f"proxy{i + 1}" for i in range(count)]
        sample["proxy_names"] = names


def cmd_record(args: argparse.Namespace) -> None:
    extra = parse_pairs(args.pairs)
    if args.mode == "closed":
        if not args.wrk:
            raise SystemExit("report.py record: --mode closed needs --wrk")
        sample = parse_wrk(Path(args.wrk))
    else:
        if not args.oha or args.rate is None:
            raise SystemExit("report.py record: --mode open needs --oha and --rate")
        sample = parse_oha(Path(args.oha))
        sample["rate"] = args.rate
    sample = {"case": args.case, "rep": args.rep, "mode": args.mode} | sample
    derive(sample, extra)
    sample["raw"] = extra
    with open(args.samples, "a") as f:
        f.write(json.dumps(sample, sort_keys=False) + "\n")
    if sample["errors"]:
        print(f"warning: {args.case} rep {args.rep}: {sample['errors']} failed or non-2xx responses", file=sys.stderr)


def cmd_last(args: argparse.Namespace) -> None:
    lines = [line for line in Path(args.samples).read_text().splitlines() if line.strip()]
    s = json.loads(lines[-1])
    lat = s["latency_ms"]
    text = f"{s['rps']:,.0f} req/s, p50 {fmt_ms(lat['p50'])}, p99 {fmt_ms(lat['p99'])}"
    if s.get("proxy_cpu_s_per_10k") is not None:
        text += f", proxy {s['proxy_cpu_s_per_10k']:.3f} CPU-s/10k, peak RSS {s['proxy_rss_peak_sum_mb']:.1f} MB"
        if len(s.get("proxy_names", [])) > 1:
            text += " (" + ", ".join(
                f"{n} {c:.3f} / {kb / 1024:.1f} MB"
                for n, c, kb in zip(s["proxy_names"], s["proxy_cpu_s_per_10k_each"], s["proxy_rss_peak_kb"])) + ")"
    if s["errors"]:
        text += f", {s['errors']} errors"
    print(text)


def cmd_meta(args: argparse.Namespace) -> None:
    Path(args.out).write_text(json.dumps(parse_pairs(args.pairs, lists=False), indent=2) + "\n")


# ---------------------------------------------------------------------------------------------
# summarize


def median(values: list[float | None]) -> float | None:
    vs = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(vs) if vs else None


def aggregate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    rps = [s["rps"] for s in samples]
    out: dict[str, Any] = {
        "reps": len(samples),
        "rps": median(rps),
        "rps_min": min(rps),
        "rps_max": max(rps),
        "latency_ms": {p: median([s["latency_ms"].get(p) for s in samples]) for p in PERCENTILES + ("mean",)},
        "latency_ms_min_of_reps": {p: min((s["latency_ms"].get(p) or 0.0) for s in samples) for p in PERCENTILES},
        "latency_ms_max_of_reps": {p: max((s["latency_ms"].get(p) or 0.0) for s in samples) for p in PERCENTILES},
        "errors": sum(s["errors"] for s in samples),
        "requests": sum(s["requests"] for s in samples),
    }
    for s in samples:  # samples recorded before the sums existed: derive them from the lists
        for what in ("idle", "peak", "after"):
            if f"proxy_rss_{what}_sum_mb" not in s and s.get(f"proxy_rss_{what}_kb"):
                s[f"proxy_rss_{what}_sum_mb"] = sum(s[f"proxy_rss_{what}_kb"]) / 1024.0
    for key in ("proxy_cpu_s_per_10k", "proxy_cpu_util", "backend_cpu_s_per_10k", "backend_cpu_util",
                "proxy_rss_idle_max_mb", "proxy_rss_peak_max_mb", "proxy_rss_after_max_mb",
                "proxy_rss_idle_sum_mb", "proxy_rss_peak_sum_mb", "proxy_rss_after_sum_mb"):
        out[key] = median([s.get(key) for s in samples])
    # Per proxy (medians over the repetitions), in bench/run's PROXY_PIDS order.
    names = next((s["proxy_names"] for s in samples if s.get("proxy_names")), None)
    if names is None:
        count = max((len(s.get("proxy_rss_peak_kb") or []) for s in samples), default=0)
        names = [f"proxy{i + 1}" for i in range(count)]

    def each(s: dict[str, Any], key: str, i: int, scale: float = 1.0) -> float | None:
        values = s.get(key) or []
        return values[i] / scale if i < len(values) and values[i] is not None else None

    out["per_proxy"] = [
        {
            "name": name,
            "cpu_s_per_10k": median([each(s, "proxy_cpu_s_per_10k_each", i) for s in samples]),
            "cpu_util": median([each(s, "proxy_cpu_util_each", i) for s in samples]),
            "rss_idle_mb": median([each(s, "proxy_rss_idle_kb", i, 1024.0) for s in samples]),
            "rss_peak_mb": median([each(s, "proxy_rss_peak_kb", i, 1024.0) for s in samples]),
            "rss_after_mb": median([each(s, "proxy_rss_after_kb", i, 1024.0) for s in samples]),
        }
        for i, name in enumerate(names)
    ]
    out["per_rep"] = [{k: v for k, v in s.items() if k not in ("case", "mode", "raw")} for s in samples]
    return out


def fmt_int(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f}"


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"


def fmt_num(v: float | None, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def fmt_mb(v: float | None) -> str:
    return "—" if v is None else f"{v:.1f}"


def fmt_ratio(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}×"


def ratio(a: float | None, b: float | None) -> float | None:
    """a ÷ b, when both are positive (a ratio of a negative or zero figure says nothing)."""
    return a / b if a is not None and b is not None and a > 0 and b > 0 else None


def peer_of(case: str, meta: dict[str, Any], present: dict[str, Any]) -> str | None:
    """The first of bench/run's CASE_PEER_<case> candidates that is in this run."""
    return next((c for c in str(meta.get(f"peer_{case}", "")).split() if c in present and c != case), None)


def fmt_delta_ms(v: float | None) -> str:
    return "—" if v is None else f"{v:+.3f}"


def fmt_pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.0f}%"


def cmd_summarize(args: argparse.Namespace) -> None:
    meta = json.loads(Path(args.meta).read_text()) if args.meta else {}
    samples = [json.loads(line) for line in Path(args.samples).read_text().splitlines() if line.strip()]
    order: list[str] = []
    for s in samples:
        if s["case"] not in order:
            order.append(s["case"])
    descriptions = {k[len("desc_"):]: v for k, v in meta.items() if k.startswith("desc_")}

    closed = {c: aggregate([s for s in samples if s["case"] == c and s["mode"] == "closed"])
              for c in order if any(s["case"] == c and s["mode"] == "closed" for s in samples)}
    rates = sorted({s["rate"] for s in samples if s["mode"] == "open"})
    open_loop = {
        str(rate): {c: aggregate(sel) for c in order
                    if (sel := [s for s in samples if s["mode"] == "open" and s["case"] == c and s["rate"] == rate])}
        for rate in rates
    }

    base = closed.get(args.baseline)
    for name, agg in closed.items():
        if base and base["rps"]:
            agg["rps_vs_baseline"] = agg["rps"] / base["rps"]
            agg["latency_added_ms"] = {p: (agg["latency_ms"][p] - base["latency_ms"][p])
                                       if agg["latency_ms"][p] is not None and base["latency_ms"][p] is not None else None
                                       for p in PERCENTILES}
    for per_case in open_loop.values():
        ob = per_case.get(args.baseline)
        for agg in per_case.values():
            if ob:
                agg["latency_added_ms"] = {p: (agg["latency_ms"][p] - ob["latency_ms"][p])
                                           if agg["latency_ms"][p] is not None and ob["latency_ms"][p] is not None else None
                                           for p in PERCENTILES}

    md: list[str] = []
    md.append(f"## weft bench — {meta.get('started', '?')}")
    md.append("")
    md.append(
        f"Closed loop: `wrk -t{meta.get('threads', '?')} -c{meta.get('connections', '?')} -d{meta.get('duration_s', '?')}s`, "
        f"{meta.get('warmup_s', '?')} s warm-up, median of {meta.get('reps', '?')} repetitions (req/s min–max in brackets: "
        f"the noise band), cases interleaved per repetition; `GET /?size={meta.get('size', '?')}` "
        f"({meta.get('size', '?')}-byte bodies), HTTP/1.1 keep-alive, 127.0.0.1."
    )
    md.append("")
    hdr = (f"| case | req/s (min–max) | p50 | p90 | p99 | p99.9 | proxy CPU-s / 10k req | proxy RSS idle / peak (MB) "
           f"| req/s vs {args.baseline} | p50 / p99 added (ms) |")
    md.append(hdr)
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, a in closed.items():
        lat = a["latency_ms"]
        added = a.get("latency_added_ms")
        if name == args.baseline or not added:
            added_txt = "—"
        else:
            added_txt = f"{fmt_delta_ms(added['p50'])} / {fmt_delta_ms(added['p99'])}"
        rss = "—" if a["proxy_rss_idle_sum_mb"] is None else f"{fmt_mb(a['proxy_rss_idle_sum_mb'])} / {fmt_mb(a['proxy_rss_peak_sum_mb'])}"
        flag = f" ⚠ {a['errors']} errors" if a["errors"] else ""
        md.append(
            f"| {name}{flag} | {fmt_int(a['rps'])} ({fmt_int(a['rps_min'])}–{fmt_int(a['rps_max'])}) "
            f"| {fmt_ms(lat['p50'])} | {fmt_ms(lat['p90'])} | {fmt_ms(lat['p99'])} | {fmt_ms(lat['p99.9'])} "
            f"| {fmt_num(a['proxy_cpu_s_per_10k'])} | {rss} | {fmt_ratio(a.get('rps_vs_baseline'))} | {added_txt} |"
        )
    multi = any(len(a["per_proxy"]) > 1 for a in closed.values())
    if multi:
        md.append("")
        md.append("With two proxies in a case, proxy CPU and RSS are their sum (the path's cost); per proxy below.")

    # weft ÷ Envoy, same run, matching hops (bench/run's CASE_PEER_<case>).
    peers = {name: peer for name in closed if (peer := peer_of(name, meta, closed))}
    comparison: dict[str, dict[str, Any]] = {}
    for name, peer in peers.items():
        a, b = closed[name], closed[peer]
        la, lb = a.get("latency_added_ms") or {}, b.get("latency_added_ms") or {}
        comparison[name] = {
            "peer": peer,
            "rps": ratio(a["rps"], b["rps"]),
            "proxy_cpu_s_per_10k": ratio(a["proxy_cpu_s_per_10k"], b["proxy_cpu_s_per_10k"]),
            "proxy_rss_idle_sum_mb": ratio(a["proxy_rss_idle_sum_mb"], b["proxy_rss_idle_sum_mb"]),
            "proxy_rss_peak_sum_mb": ratio(a["proxy_rss_peak_sum_mb"], b["proxy_rss_peak_sum_mb"]),
            "p50_added": ratio(la.get("p50"), lb.get("p50")),
            "p99_added": ratio(la.get("p99"), lb.get("p99")),
        }
        a["vs_peer"] = comparison[name]
    if comparison:
        md.append("")
        md.append(
            "weft ÷ Envoy, same run, matching hops (1hop ↔ 1hop, 2hop ↔ 2hop): req/s above 1× means weft is faster; "
            "CPU, RSS and added latency below 1× mean weft uses or adds less. Each figure is the ratio of the medians "
            "above, so it is as noisy as they are (see their min–max bands)."
        )
        md.append("")
        md.append(f"| weft case | Envoy case | req/s | proxy CPU-s / 10k req | proxy RSS idle | proxy RSS peak "
                  f"| p50 / p99 added | weft req/s vs {args.baseline} | Envoy req/s vs {args.baseline} |")
        md.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, c in comparison.items():
            md.append(
                f"| {name} | {c['peer']} | {fmt_ratio(c['rps'])} | {fmt_ratio(c['proxy_cpu_s_per_10k'])} "
                f"| {fmt_ratio(c['proxy_rss_idle_sum_mb'])} | {fmt_ratio(c['proxy_rss_peak_sum_mb'])} "
                f"| {fmt_ratio(c['p50_added'])} / {fmt_ratio(c['p99_added'])} "
                f"| {fmt_ratio(closed[name].get('rps_vs_baseline'))} | {fmt_ratio(closed[c['peer']].get('rps_vs_baseline'))} |"
            )

    md.append("")
    md.append("Server-core detail (medians): CPU is a fraction of one core during the measured run.")
    md.append("")
    md.append("| case | proxy CPU | backend CPU | backend CPU-s / 10k req | proxy RSS after load (MB) | requests (all reps) |")
    md.append("|---|---:|---:|---:|---:|---:|")
    for name, a in closed.items():
        md.append(
            f"| {name} | {fmt_pct(a['proxy_cpu_util'])} | {fmt_pct(a['backend_cpu_util'])} "
            f"| {fmt_num(a['backend_cpu_s_per_10k'])} | {fmt_mb(a['proxy_rss_after_sum_mb'])} | {fmt_int(a['requests'])} |"
        )
    if multi:
        md.append("")
        md.append("Per proxy (medians; A is the client-side sidecar, B the server-side one):")
        md.append("")
        md.append("| case | proxy | CPU-s / 10k req | CPU | RSS idle / peak (MB) | RSS after load (MB) |")
        md.append("|---|---|---:|---:|---:|---:|")
        for name, a in closed.items():
            for pp in a["per_proxy"]:
                md.append(
                    f"| {name} | {pp['name']} | {fmt_num(pp['cpu_s_per_10k'])} | {fmt_pct(pp['cpu_util'])} "
                    f"| {fmt_mb(pp['rss_idle_mb'])} / {fmt_mb(pp['rss_peak_mb'])} | {fmt_mb(pp['rss_after_mb'])} |"
                )
    for rate, per_case in open_loop.items():
        md.append("")
        md.append(f"Open loop at {rate} req/s (`oha -q {rate} --latency-correction`, coordinated omission corrected):")
        md.append("")
        md.append("| case | achieved req/s | p50 | p90 | p99 (min–max) | p99.9 | proxy CPU-s / 10k req | p50 / p99 added (ms) |")
        md.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, a in per_case.items():
            lat = a["latency_ms"]
            added = a.get("latency_added_ms")
            added_txt = "—" if name == args.baseline or not added else f"{fmt_delta_ms(added['p50'])} / {fmt_delta_ms(added['p99'])}"
            flag = f" ⚠ {a['errors']} errors" if a["errors"] else ""
            md.append(
                f"| {name}{flag} | {fmt_int(a['rps'])} | {fmt_ms(lat['p50'])} | {fmt_ms(lat['p90'])} "
                f"| {fmt_ms(lat['p99'])} ({fmt_num(a['latency_ms_min_of_reps']['p99'])}–{fmt_num(a['latency_ms_max_of_reps']['p99'])}) "
                f"| {fmt_ms(lat['p99.9'])} | {fmt_num(a['proxy_cpu_s_per_10k'])} | {added_txt} |"
            )
        open_peers = {name: peer for name in per_case if (peer := peer_of(name, meta, per_case))}
        if open_peers:
            md.append("")
            md.append(f"weft ÷ Envoy at {rate} req/s:")
            md.append("")
            md.append("| weft case | Envoy case | p50 added | p99 added | proxy CPU-s / 10k req |")
            md.append("|---|---|---:|---:|---:|")
            for name, peer in open_peers.items():
                a, b = per_case[name], per_case[peer]
                la, lb = a.get("latency_added_ms") or {}, b.get("latency_added_ms") or {}
                a["vs_peer"] = {"peer": peer, "p50_added": ratio(la.get("p50"), lb.get("p50")),
                                "p99_added": ratio(la.get("p99"), lb.get("p99")),
                                "proxy_cpu_s_per_10k": ratio(a["proxy_cpu_s_per_10k"], b["proxy_cpu_s_per_10k"])}
                v = a["vs_peer"]
                md.append(f"| {name} | {peer} | {fmt_ratio(v['p50_added'])} | {fmt_ratio(v['p99_added'])} "
                          f"| {fmt_ratio(v['proxy_cpu_s_per_10k'])} |")
    md.append("")
    md.append("Cases:")
    for name in order:
        md.append(f"- `{name}`: {descriptions.get(name, '')}")
    md.append("")
    md.append(
        f"Setup: {meta.get('cpus', '?')} CPUs ({meta.get('cpu_model', '?')}), {meta.get('kernel', '?')}; "
        f"pinning: {meta.get('pinning', '?')}; weft proxy TOKIO_WORKER_THREADS={meta.get('proxy_workers', '?')}"
        + (f", Envoy {meta['envoy_version']} --concurrency {meta.get('proxy_workers', '?')}"
           if meta.get("envoy_version") not in (None, "", "none") else "")
        + f", access log off; {meta.get('wrk_version', 'wrk ?')}; load average at start {meta.get('loadavg_start', '?')}, "
        f"at end {meta.get('loadavg_end', '?')}."
    )
    text = "\n".join(md) + "\n"

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.md").write_text(text)
    result = {"meta": meta, "baseline": args.baseline, "closed_loop": closed, "open_loop": open_loop,
              "vs_peer": comparison}
    (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    sys.stdout.write(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    rec = sub.add_parser("record", help="append one sample")
    rec.add_argument("--samples", required=True)
    rec.add_argument("--case", required=True)
    rec.add_argument("--rep", type=int, required=True)
    rec.add_argument("--mode", choices=("closed", "open"), default="closed")
    rec.add_argument("--wrk")
    rec.add_argument("--oha")
    rec.add_argument("--rate", type=int)
    rec.add_argument("pairs", nargs="*")
    rec.set_defaults(func=cmd_record)

    summ = sub.add_parser("summarize", help="aggregate samples into results.md / results.json")
    summ.add_argument("--samples", required=True)
    summ.add_argument("--meta")
    summ.add_argument("--out-dir", required=True)
    summ.add_argument("--baseline", default="direct")
    summ.set_defaults(func=cmd_summarize)

    last = sub.add_parser("last", help="one line about the last sample")
    last.add_argument("--samples", required=True)
    last.set_defaults(func=cmd_last)

    meta = sub.add_parser("meta", help="write the run's parameters")
    meta.add_argument("--out", required=True)
    meta.add_argument("pairs", nargs="*")
    meta.set_defaults(func=cmd_meta)

    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
