-- SPDX-License-Identifier: BSD-3-Clause
-- wrk script for bench/run: prints one machine-readable line with the totals, the error
-- counts and the latency percentiles (microseconds). wrk counts responses with status >= 400
-- in errors.status (our origins never answer 1xx/3xx, so this is the non-2xx count).
-- With FPBENCH_HIST set it also prints wrk's latency histogram (value_us:count of every
-- non-empty bucket), so that bench/run can merge several wrk processes exactly.
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "FPBENCH requests=%.0f bytes=%.0f duration_us=%.0f connect=%.0f read=%.0f " ..
        "write=%.0f status=%.0f timeout=%.0f p50=%.0f p90=%.0f p99=%.0f max=%.0f mean=%.1f\n",
        summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write,
        e.status, e.timeout, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max, latency.mean))
    if os.getenv("FPBENCH_HIST") then
        local parts = {}
        for i = 1, #latency do
            local v, n = latency(i)
            parts[#parts + 1] = string.format("%.0f:%.0f", v, n)
        end
        io.write("FPHIST " .. table.concat(parts, " ") .. "\n")
    end
end
