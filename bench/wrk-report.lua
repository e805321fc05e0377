-- wrk script used by bench/run: at the end of a run, print one machine-readable line
--   WRK_JSON {"requests":..., "duration_us":..., "p50_us":..., ...}
-- with the percentiles wrk's own --latency output does not give (p99.9) and the error counters.
-- Latencies are wrk's closed-loop service times in microseconds (no coordinated-omission
-- correction: open-loop latency is measured with oha, see bench/README.md).

done = function(summary, latency, requests)
  local e = summary.errors
  local pct = function(p) return latency:percentile(p) end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.2f,"stdev":%.2f,"max":%d,' ..
    '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p99.9":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.stdev, latency.max,
    pct(50), pct(75), pct(90), pct(99), pct(99.9)))
end
