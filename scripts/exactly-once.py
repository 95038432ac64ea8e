#!/usr/bin/env python3
"""Exactly once with many writers: two `usagebox serve` processes on one ClickHouse store (a
single server or a sharded cluster). Clients send overlapping batches to either server and retry on
errors and timeouts while the servers are SIGKILLed and restarted; the same event ids are sent with
different content to both servers at once. At the end every acknowledged event is counted exactly
once by every read (raw SQL and rollups), verify is clean, and each contested id has one content
everywhere with the other send answered `conflict`.

usage: exactly-once.py BIN clickhouse://host:port[,…]/[?cluster=…]
"""
import json, os, random, re, signal, socket, subprocess, sys, threading, time, urllib.error, urllib.request
from harness import call_json, check, failures, free_port

BIN, URL = sys.argv[1], sys.argv[2]
ADMIN = "exactly-once-admin"
DB = "eo_%d" % random.randrange(10**9)
base, _, query = URL.partition("?")
STORE = base.rstrip("/") + "/" + DB + ("?" + query if query else "")


PORTS = [free_port(), free_port()]
PEERS = ",".join(f"http://127.0.0.1:{p}" for p in PORTS)
servers = [None, None]


def start(i):
    env = dict(os.environ, USAGEBOX_KEY=ADMIN)
    p = subprocess.Popen([BIN, "serve", "--store", STORE, "--port", str(PORTS[i]), "--peers", PEERS, "--node", str(i), "--log-level", "error"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    line = p.stdout.readline()
    if "listening" not in line:
        raise SystemExit(f"server {i} did not start: {line!r}")
    servers[i] = p


def kill(i):
    servers[i].send_signal(signal.SIGKILL)
    servers[i].wait()


def call(i, path, method="GET", body=None, timeout=15):
    return call_json(f"http://127.0.0.1:{PORTS[i]}", ADMIN, path, method, body, timeout)


POOL = 30_000


def event(n):
    return {"event_id": f"e{n}", "account_id": f"acct_{n % 8}", "meter_id": "tokens", "model_id": ["m1", "m2", "m3"][n % 3],
            "quantity": 1 + (n * 7919) % 1000, "unit": "tokens", "timestamp": f"2026-05-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z",
            "dimensions": {"token_type": "input" if n % 2 else "output"}}


subprocess.run([BIN, "migrate", "--store", STORE], check=True, stdout=subprocess.DEVNULL)
start(0)
start(1)
acked, lock, done = set(), threading.Lock(), threading.Event()
stats = {"batches": 0, "retries": 0}


def client(c):
    rng = random.Random(c)
    for b in range(30):
        batch = [event((c * 9_973 + b * 400 + i) % POOL) for i in range(400)]
        while True:
            target = rng.randrange(2)
            try:
                status, answer = call(target, "/v1/usage/batch", "POST", {"events": batch}, timeout=20)
            except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
                status, answer = 0, None
            if status == 200 and answer["accepted"] + answer["duplicates"] == len(batch):
                with lock:
                    acked.update(e["event_id"] for e in batch)
                    stats["batches"] += 1
                break
            with lock:
                stats["retries"] += 1
            time.sleep(0.1)


def killer():
    rng = random.Random(99)
    for round in range(4):
        time.sleep(rng.uniform(0.5, 1.5))
        if done.is_set():
            return
        victim = round % 2
        kill(victim)
        time.sleep(rng.uniform(0.2, 0.8))
        start(victim)
        stats["kills"] = stats.get("kills", 0) + 1


t0 = time.monotonic()
threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
k = threading.Thread(target=killer)
for t in threads + [k]:
    t.start()
for t in threads:
    t.join()
done.set()
k.join()
elapsed = time.monotonic() - t0

# The same ids with different content, sent to both servers at once.
answers = {}


def contest(i, q):
    batch = [{"event_id": f"contested_{n}", "account_id": f"acct_{n % 8}", "meter_id": "tokens", "model_id": "m1", "quantity": q,
              "unit": "tokens", "timestamp": "2026-05-20T10:00:00Z"} for n in range(50)]
    while True:
        try:
            status, answer = call(i, "/v1/usage/batch", "POST", {"events": batch})
        except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
            continue
        if status == 200:
            answers[q] = answer
            return


ts = [threading.Thread(target=contest, args=(0, 11)), threading.Thread(target=contest, args=(1, 22))]
for t in ts:
    t.start()
for t in ts:
    t.join()
# A send answered 503 (a forwarded half refused while a first host catches up) is sent again, and
# the ids its first try stored are then its duplicates: each id is accepted or a duplicate in one
# send's last answer and a conflict in the other's, and what is stored is the content that won.
won = {q: ans["accepted"] + ans["duplicates"] for q, ans in answers.items()}
lost = {q: {e["event_id"] for e in ans["errors"] if e["status"] == "conflict"} for q, ans in answers.items()}
status, kept = call(0, "/v1/query/sql", "POST", {"sql": "SELECT event_id, quantity FROM usage_events WHERE event_id LIKE 'contested%'"})
kept = {r[0]: int(r[1]) for r in kept["rows"]} if status == 200 else {}
check(len(kept) == 50 and won[11] + won[22] == 50 and len(lost[11]) + len(lost[22]) == 50 and not (lost[11] & lost[22])
      and all(q in lost and eid in lost[22 if q == 11 else 11] and eid not in lost[q] for eid, q in kept.items()),
      f"50 ids sent with two contents to both servers at once: {won[11] + won[22]} accepted or duplicates of a retried send, "
      f"{len(lost[11]) + len(lost[22])} conflicts, each answered conflict to the content not stored ({len(kept)} stored)")

expected = {}
for eid in acked:
    e = event(int(eid[1:]))
    n, s = expected.get(e["account_id"], (0, 0))
    expected[e["account_id"]] = (n + 1, s + e["quantity"])
status, sql = call(0, "/v1/query/sql", "POST", {"sql": "SELECT account_id, count(), sum(quantity) FROM usage_events WHERE event_id NOT LIKE 'contested%' GROUP BY account_id ORDER BY account_id"})
stored = {r[0]: (int(r[1]), int(r[2])) for r in sql["rows"]} if status == 200 else {}
check(stored == expected, f"raw: every acknowledged event stored once ({sum(n for n, _ in expected.values())} events over {len(expected)} accounts)")
status, dup = call(1, "/v1/query/sql", "POST", {"sql": "SELECT count() - uniqExact(account_id, event_id) FROM usage_events"})
check(status == 200 and int(dup["rows"][0][0]) == 0, "no event id stored twice")
status, winners = call(0, "/v1/query/sql", "POST", {"sql": "SELECT uniqExact(quantity), count() FROM usage_events WHERE event_id LIKE 'contested%'"})
check(status == 200 and winners["rows"][0][1] in (50, "50"), f"each contested id stored once: {winners.get('rows') if status == 200 else status}")
status, usage = call(1, "/v1/usage?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z&group_by=account_id&source=rollup")
raw = call(0, "/v1/query/sql", "POST", {"sql": "SELECT account_id, count(), sum(quantity) FROM usage_events GROUP BY account_id ORDER BY account_id"})[1]
raw_by = {r[0]: (int(r[1]), int(r[2])) for r in raw["rows"]}
roll_by = {g["account_id"]: (g["count"], g["sum"]) for g in usage.get("groups", [])}
check(status == 200 and roll_by == raw_by, "rollups answer exactly what the raw events hold, per account")
clean = True
for acct in sorted(raw_by):
    s, v = call(acct.endswith("0") and 0 or 1, f"/v1/accounts/{acct}/verify?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z")
    if s != 200 or not v["ok"]:
        clean = False
        print("   verify", acct, s, json.dumps(v)[:300])
check(clean, f"verify clean on all {len(raw_by)} accounts")
total = sum(n for n, _ in expected.values())
print(f"  bench exactly-once: {stats['batches']} batches of 400 ({total} distinct events acknowledged) in {elapsed:.1f} s with "
      f"{stats.get('kills', 0)} SIGKILLs and {stats['retries']} retried sends")
for i in (0, 1):
    servers[i].send_signal(signal.SIGTERM)
    servers[i].wait(timeout=30)
for host in base.replace("clickhouse://", "").rstrip("/").split(","):
    subprocess.run(["curl", "-s", f"http://{host}/", "--data-binary", f"DROP DATABASE IF EXISTS {DB}"], stdout=subprocess.DEVNULL)
if failures:
    print(f"{len(failures)} exactly-once check(s) failed", file=sys.stderr)
    sys.exit(1)
