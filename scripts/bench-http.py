#!/usr/bin/env python3
"""HTTP batch ingest rate: POST /v1/usage/batch with N events per batch from C concurrent clients.

usage: bench-http.py URL[,URL…] KEY EVENTS.ndjson [--batch 10000] [--clients 2] [--limit N]
With several URLs (servers sharing a store), client n sends to URL n mod count.
Prints events/s over the whole run (bodies are prepared before the clock starts).
"""
import argparse, json, sys, threading, time, urllib.request

p = argparse.ArgumentParser()
p.add_argument("url"); p.add_argument("key"); p.add_argument("file")
p.add_argument("--batch", type=int, default=10000)
p.add_argument("--clients", type=int, default=2)
p.add_argument("--limit", type=int, default=0)
a = p.parse_args()

bodies, lines = [], []
with open(a.file, "rb") as f:
    for i, line in enumerate(f):
        if a.limit and i >= a.limit:
            break
        lines.append(line.rstrip(b"\n"))
        if len(lines) == a.batch:
            bodies.append(b'{"events":[' + b",".join(lines) + b"]}")
            lines = []
if lines:
    bodies.append(b'{"events":[' + b",".join(lines) + b"]}")

accepted = [0] * a.clients
def client(n):
    for body in bodies[n::a.clients]:
        url = a.url.split(",")[n % len(a.url.split(","))]
        req = urllib.request.Request(url + "/v1/usage/batch", data=body, method="POST",
                                     headers={"Authorization": "Bearer " + a.key, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as r:
            accepted[n] += json.load(r)["accepted"]

start = time.monotonic()
threads = [threading.Thread(target=client, args=(n,)) for n in range(a.clients)]
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.monotonic() - start
total = sum(accepted)
print(json.dumps({"events": total, "seconds": round(elapsed, 3), "events_per_second": int(total / elapsed),
                  "batch": a.batch, "clients": a.clients}))
