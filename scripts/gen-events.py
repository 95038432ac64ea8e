#!/usr/bin/env python3
"""Deterministic month of usage events as NDJSON, for benchmarks and the 10M-event measurements.

usage: gen-events.py N [--accounts 100] [--month 2026-05] > events.ndjson
Events cycle over accounts, 3 models and 2 token types, spread evenly over the month.
"""
import argparse
import sys
from datetime import datetime, timezone

p = argparse.ArgumentParser()
p.add_argument("n", type=int)
p.add_argument("--accounts", type=int, default=100)
p.add_argument("--month", default="2026-05")
a = p.parse_args()

start = int(datetime.strptime(a.month + "-01", "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp())
y, m = map(int, a.month.split("-"))
end = int(datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=timezone.utc).timestamp())
span = end - start
models = ["claude-opus-4-8", "claude-sonnet-4-5", "claude-haiku-4-5"]
types = ["input", "output"]
out = sys.stdout
buf = []
last_t, ts = None, ""
for i in range(a.n):
    t = start + i * span // a.n
    if t != last_t:  # many events share a second: format each second once (same output, 100M in minutes)
        last_t, ts = t, datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    acct = i % a.accounts
    model = models[(i // a.accounts) % 3]
    tt = types[(i // (a.accounts * 3)) % 2]
    q = (i * 7919) % 5000 + 1
    buf.append('{"event_id":"evt_%d","account_id":"acct_%d","meter_id":"claude_tokens","model_id":"%s","quantity":%d,'
               '"unit":"tokens","timestamp":"%s","dimensions":{"token_type":"%s"}}\n' % (i, acct, model, q, ts, tt))
    if len(buf) >= 100000:
        out.write("".join(buf))
        buf = []
out.write("".join(buf))
