#!/usr/bin/env python3
"""Per-message delays from a domain's message log (redis-cli --raw XRANGE output): from the first FROM event to the
delivered event of each message id. FROM: 'intake', or 'refused' (an attempt whose reply says refused).
Prints n, median/p50, p95, p99 and max in milliseconds."""
import statistics
import sys

lines = open(sys.argv[1]).read().split("\n")
start = sys.argv[2]
entries, cur, i = [], None, 0
while i < len(lines):
    l = lines[i]
    if "-" in l and l.split("-")[0].isdigit() and (i + 1 < len(lines)) and lines[i + 1] == "event":
        cur = {}; entries.append(cur); i += 1; continue
    if cur is not None and i + 1 < len(lines):
        cur[l] = lines[i + 1]; i += 2; continue
    i += 1
begin, delivered = {}, {}
for e in entries:
    if start == "intake" and e.get("event") == "intake" or start == "refused" and e.get("event") == "attempt" and "refused" in e.get("reply", ""):
        begin.setdefault(e["message_id"], int(e["time"]))
    if e.get("event") == "delivered":
        delivered[e["message_id"]] = int(e["time"])
d = sorted(delivered[k] - begin[k] for k in begin if k in delivered)
pct = lambda p: d[min(len(d) - 1, int(len(d) * p))]
print(f"n={len(d)} p50={statistics.median(d):.0f} ms p95={pct(0.95)} ms p99={pct(0.99)} ms max={d[-1]} ms" if d else "no data")
