#!/usr/bin/env python3
"""A replica surviving the other's loss: `usagebox serve` on a replicated ClickHouse store (two
replicas of one shard, ZooKeeper; `scripts/clickhouse start replicas`). Clients send overlapping
batches and retry on errors while each ClickHouse replica in turn is SIGKILLed mid-ingest and
started again:

- the second replica down: ingest goes on (the first host takes every write); started again, it
  catches up from ZooKeeper's log and holds exactly what the first holds;
- the first host (where writes go) down: every write fails and is retried (nothing half-stored);
  reads — grouped usage, SQL, explain, verify, key checks — are answered by the other replica
  only when it holds every part the first host recorded (then every acknowledged event), and
  refused with 503 while it lacks one (fetches stopped on purpose, and mid-ingest).

At the end every acknowledged event is counted exactly once on both replicas (raw and rollups),
verify is clean, and both replicas hold the same events, rollups and segments.

usage: replica-loss.py BIN clickhouse://host1:port,host2:port/?replicated=true
"""
import json, os, random, signal, socket, subprocess, sys, threading, time, urllib.error, urllib.parse, urllib.request
from harness import call_json, check, failures, free_port

BIN, URL = sys.argv[1], sys.argv[2]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CH_DIR = os.environ.get("USAGEBOX_CH_DIR", os.path.join(ROOT, ".build-clickhouse"))
ADMIN = "replica-loss-admin"
DB = "rl_%d" % random.randrange(10**9)
base, _, query = URL.partition("?")
STORE = base.rstrip("/") + "/" + DB + ("?" + query if query else "")
HOSTS = base.replace("clickhouse://", "").rstrip("/").split(",")
REPLICAS = ["replica1", "replica2"]  # scripts/clickhouse's names for HOSTS[0], HOSTS[1]
PORT = free_port()
MONTH = "from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z"


def ch(i, sql, timeout=60):
    """A statement straight to replica i (not through UsageBox); its text answer."""
    req = urllib.request.Request(f"http://{HOSTS[i]}/", data=sql.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read().decode().strip()


def kill_replica(i):
    with open(os.path.join(CH_DIR, REPLICAS[i], "pid")) as f:
        pid = int(f.read())
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):  # gone (or a zombie) before anyone counts on it being down
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split()[2] == "Z":
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)


def start_replicas():
    subprocess.run([os.path.join(ROOT, "scripts", "clickhouse"), "start", "replicas"], check=True, stdout=subprocess.DEVNULL)


def call(path, method="GET", body=None, timeout=20):
    try:
        return call_json(f"http://127.0.0.1:{PORT}", ADMIN, path, method, body, timeout)
    except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
        return 0, None


POOL = 40_000


def event(n):
    return {"event_id": f"e{n}", "account_id": f"acct_{n % 6}", "meter_id": "tokens", "model_id": ["m1", "m2"][n % 2],
            "quantity": 1 + (n * 7919) % 1000, "unit": "tokens", "timestamp": f"2026-05-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:00Z"}


def totals(ids):
    out = {}
    for eid in ids:
        e = event(int(eid[1:]))
        n, s = out.get(e["account_id"], (0, 0))
        out[e["account_id"]] = (n + 1, s + e["quantity"])
    return out


def usage_by_account(source="rollup"):
    status, usage = call(f"/v1/usage?{MONTH}&group_by=account_id&source={source}")
    return status, ({g["account_id"]: (g["count"], g["sum"]) for g in usage.get("groups", [])} if status == 200 else usage)


subprocess.run([BIN, "migrate", "--store", STORE], check=True, stdout=subprocess.DEVNULL)
serve = subprocess.Popen([BIN, "serve", "--store", STORE, "--port", str(PORT), "--log-level", "error"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=dict(os.environ, USAGEBOX_KEY=ADMIN), text=True)
if "listening" not in serve.stdout.readline():
    raise SystemExit("usagebox serve did not start")

acked, sent, lock = set(), set(), threading.Lock()
sends = []  # (start, end, ok) of every batch sent, to set against the windows a replica was down
windows = {0: [], 1: []}
stats = {"batches": 0, "retries": 0, "inflight": 0}
go = threading.Event()
go.set()


stop = threading.Event()


def client(c):
    rng = random.Random(c)
    b = 0
    while not stop.is_set():  # through every phase; ids wrap around the pool (duplicates then)
        batch = [event((c * 9_973 + b * 300 + i) % POOL) for i in range(300)]
        b += 1
        time.sleep(0.02)
        while True:
            while True:  # held here while quiet; in flight from the moment it may send
                go.wait()
                with lock:
                    if go.is_set():
                        stats["inflight"] += 1
                        break
            start = time.monotonic()
            with lock:
                sent.update(e["event_id"] for e in batch)
            status, answer = call("/v1/usage/batch", "POST", {"events": batch})
            ok = status == 200 and answer["accepted"] + answer["duplicates"] == len(batch)
            with lock:
                sends.append((start, time.monotonic(), ok))
                if ok:
                    acked.update(e["event_id"] for e in batch)
                    stats["batches"] += 1
                else:
                    stats["retries"] += 1
                stats["inflight"] -= 1
            if ok:
                break
            time.sleep(0.05 + rng.random() * 0.1)


def down_for(i, seconds, since=None):
    """Replica i down (killed now, or at `since`) for `seconds` more, then started again."""
    t = since if since is not None else time.monotonic()
    if since is None:
        kill_replica(i)
    time.sleep(seconds)
    windows[i].append((t, time.monotonic()))
    start_replicas()


def quiet():
    """No send under way and none will start (until go is set again)."""
    with lock:
        go.clear()
    while True:
        with lock:
            if stats["inflight"] == 0:
                return
        time.sleep(0.05)


def sends_within(i):
    return [ok for (a, b, ok) in sends for (t0, t1) in windows[i] if a >= t0 and b <= t1]


t0 = time.monotonic()
threads = [threading.Thread(target=client, args=(c,)) for c in range(3)]
for t in threads:
    t.start()

# 1. The second replica lost mid-ingest, then started again.
time.sleep(1.0)
down_for(1, 2.0)

# 2. The first host — where every write goes — lost mid-ingest, then started again. A read meanwhile
#    is answered by the other replica only if it holds everything stored; else it is refused (503).
time.sleep(1.0)
with lock:
    before = set(acked)
t = time.monotonic()
kill_replica(0)
time.sleep(0.3)
with lock:
    during = set(acked)
status, seen = usage_by_account()
low, high = totals(before), totals(during)
if status == 200:
    check(set(low) <= set(seen) <= set(high) and all(low.get(a, (0, 0)) <= seen[a] <= high[a] for a in seen),
          "first host down mid-ingest: usage answered by the other replica, holding every event acknowledged before")
else:
    # Refused because no replica is known to hold everything, or because the writes the lost host
    # failed left rollups to settle (source=rollup is asked for by name: never answered short).
    check(status == 503 and seen["error"]["code"] == "unavailable"
          and ("replica" in seen["error"]["message"] or "settled" in seen["error"]["message"]),
          f"first host down mid-ingest: usage refused while the other replica may lack events: {status} {seen['error']['message'][:200]}")
down_for(0, 3.0, since=t)

# 3. The first host lost with nothing in flight and the other replica caught up: every read the
#    other replica answers is exactly what was acknowledged.
time.sleep(1.0)
quiet()
with lock:
    low, high = totals(acked), totals(sent)
TABLES = ch(1, f"SELECT table FROM system.replicas WHERE database = '{DB}' ORDER BY table").split()
for table in TABLES:
    ch(1, f"SYSTEM SYNC REPLICA {DB}.{table}")
kill_replica(0)
status_raw, raw = usage_by_account("raw")
status_roll, roll = usage_by_account("rollup")
bounded = status_raw == 200 and set(low) <= set(raw) <= set(high) and all(low.get(a, (0, 0)) <= raw[a] <= high[a] for a in raw)
check(bounded and roll == raw, f"first host down, the other replica caught up: raw and rollup reads agree and hold every acknowledged "
                               f"event ({sum(n for n, _ in low.values())} acknowledged, {sum(n for n, _ in raw.values()) if status_raw == 200 else raw} stored)")
status, sql = call("/v1/query/sql", "POST", {"sql": "SELECT count(), uniqExact(event_id) FROM usage_events"})
stored = sum(n for n, _ in raw.values()) if status_raw == 200 else -1
check(status == 200 and [int(x) for x in sql["rows"][0]] == [stored] * 2, f"first host down: SQL answered by the other replica ({sql})")
status, ex = call(f"/v1/accounts/acct_1/explain?{MONTH}")
check(status == 200 and ex.get("totals", {}).get("count") == raw.get("acct_1", (0, 0))[0],
      f"first host down: explain answered by the other replica ({status}, {json.dumps(ex.get('totals'))[:160]})")
status, v = call(f"/v1/accounts/acct_1/verify?{MONTH}")
check(status == 200 and v.get("ok") is True and v.get("raw_sum") == raw.get("acct_1", (0, 0))[1],
      f"first host down: verify answered and clean ({status}, {json.dumps(v)[:160]})")
status, answer = call("/v1/usage/batch", "POST", {"events": [event(POOL + 1)]})
check(status == 503 and "cannot reach" in json.dumps(answer),
      f"first host down: a write is refused with 503, to be retried ({status} {json.dumps(answer)[:160]})")
t = time.monotonic()
go.set()
down_for(0, 3.0, since=t)

# 4. A replica that lacks a part (fetches stopped), the first host lost: reads are refused, not
#    answered short — made to happen, not left to timing as in 2.
time.sleep(0.5)
quiet()
for table in TABLES:
    ch(1, f"SYSTEM SYNC REPLICA {DB}.{table}")
ch(1, f"SYSTEM STOP FETCHES {DB}.events")
status, answer = call("/v1/usage/batch", "POST", {"events": [event(POOL + 2)]})
check(status == 200 and answer["accepted"] == 1, "a write the replica cannot fetch (its fetches stopped)")
with lock:
    acked.add(f"e{POOL + 2}")
    sent.add(f"e{POOL + 2}")
time.sleep(0.5)  # the replica has read the log entry and queued the fetch
kill_replica(0)
status, seen = usage_by_account()
check(status == 503 and seen["error"]["code"] == "unavailable" and "lacks" in seen["error"]["message"],
      f"first host down, the replica lacking one part: usage refused (503), not answered short ({status} {json.dumps(seen)[:200]})")
start_replicas()
ch(1, f"SYSTEM START FETCHES {DB}.events")
go.set()

time.sleep(1.0)
stop.set()
for t in threads:
    t.join()
elapsed = time.monotonic() - t0
status, answer = call("/v1/usage/batch", "POST", {"events": [event(POOL + 1)]})
check(status == 200 and answer["accepted"] == 1, "first host back: the write refused while it was down is accepted")
with lock:
    acked.add(f"e{POOL + 1}")
expected = totals(acked)

ok1, ok0 = sends_within(1), sends_within(0)
check(sum(ok1) > 0, f"second replica down: ingest went on ({sum(ok1)} of {len(ok1)} batches sent meanwhile acknowledged)")
check(len(ok0) > 0 and not any(ok0), f"first host down: no write acknowledged ({len(ok0)} sends failed and were retried)")

for i in (0, 1):
    ch(i, f"SYSTEM SYNC REPLICA {DB}.events")
    ch(i, f"SYSTEM SYNC REPLICA {DB}.rollup_hour")
    ch(i, f"SYSTEM SYNC REPLICA {DB}.segments")
status, raw = usage_by_account("raw")
status2, roll = usage_by_account("rollup")
check(raw == expected and roll == expected, f"every acknowledged event counted once, raw and rollup ({len(acked)} events)")
per_replica = [ch(i, f"SELECT count(), uniqExact(event_id), sum(quantity) FROM {DB}.events") for i in (0, 1)]
check(per_replica[0] == per_replica[1] == f"{len(acked)}\t{len(acked)}\t{sum(s for _, s in expected.values())}",
      f"both replicas hold every acknowledged event once: {per_replica}")
rollups = [ch(i, f"SELECT sum(s), sum(c) FROM (SELECT sumMerge(sum_lo) + sumMerge(sum_hi) * 4294967296 AS s, countMerge(count) AS c "
                 f"FROM {DB}.rollup_hour GROUP BY account_id, hour)") for i in (0, 1)]
check(rollups[0] == rollups[1], f"both replicas' hourly rollups agree: {rollups}")
segs = [ch(i, f"SELECT account_id, segment_id, argMax(event_count, version), argMax(running_hash, version) FROM {DB}.segments "
              f"GROUP BY account_id, segment_id ORDER BY account_id, segment_id") for i in (0, 1)]
check(segs[0] == segs[1], "both replicas hold the same segments")
clean = True
for acct in sorted(expected):
    s, v = call(f"/v1/accounts/{acct}/verify?{MONTH}")
    if s != 200 or not v.get("ok"):
        clean = False
        print("   verify", acct, s, json.dumps(v)[:300])
check(clean, f"deep verify clean on all {len(expected)} accounts")
print(f"  bench replica-loss: {stats['batches']} batches of 300 ({len(acked)} distinct events acknowledged) in {elapsed:.1f} s, "
      f"each replica SIGKILLed once, {stats['retries']} retried sends")
serve.send_signal(signal.SIGTERM)
serve.wait(timeout=30)
for i in (0, 1):
    try:
        ch(i, f"DROP DATABASE IF EXISTS {DB}")
    except OSError:
        pass
if failures:
    print(f"{len(failures)} replica-loss check(s) failed", file=sys.stderr)
    sys.exit(1)
