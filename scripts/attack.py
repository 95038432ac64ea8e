#!/usr/bin/env python3
"""The attack suite: a live `usagebox serve` attacked as an outsider would, checked for what must
hold. Run by scripts/attack (which builds the binary); each part prints its figures and fails loudly.

  kill       SIGKILL the server again and again during HTTP ingest by retrying clients: every
             acknowledged event is stored exactly once, sums match, verify is clean.
  authz      every operation of /openapi.yaml x role x own/other account: refused exactly when the
             document's x-usagebox-role or the key's account says so, and a refusal leaks no data.
  bombs      SQL, verify, usage and invoice bombs, concurrently: each answered with a clear 4xx, the
             server's resident memory stays under the bound, and /healthz and another key's ingest
             stay fast (p99 printed as a benchmark row, not asserted).
  tamper     each kind of edit an intruder with the database file could make (an event's quantity,
             model or segment, a deleted event, a rollup row, offsetting rollup edits, a forged
             chain, a consistent edit of events, rollups and segment totals together): caught by
             deep verify, and by incremental verify once a scrub or verify pass has run.
  overflow   a batch with an event that would push a rollup past 64 bits: only that event is refused.
  slow       slow clients: request heads and bodies trickled a byte at a time are cut off by the idle
             and request timeouts, and the server keeps answering meanwhile.

usage: attack.py BIN [part ...]
"""
import json, os, shutil, sqlite3, random, re, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request, urllib.error
from harness import check, failures, free_port, stop

BIN = sys.argv[1]
PARTS = sys.argv[2:] or ["kill", "authz", "bombs", "tamper", "overflow", "slow"]
ADMIN = "attack-admin-secret"
MEMORY_BOUND_MB = 512


class Server:
    def __init__(self, db, extra=()):
        self.db, self.extra, self.proc, self.url = db, list(extra), None, None

    def start(self, port=0):
        env = dict(os.environ, USAGEBOX_KEY=ADMIN)
        self.proc = subprocess.Popen([BIN, "serve", "--db", self.db, "--port", str(port), "--log-level", "error"] + self.extra,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://[^ \n]+", line)
        if not m:
            raise SystemExit(f"the server did not start: {line!r}")
        self.url = m.group(0)
        return self

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        stop(self.proc, grace=20)

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0


def call(url, method="GET", key=ADMIN, body=None, timeout=30):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def keys(db, extra=()):
    extra = list(extra)
    out = {}
    for account, role in [("acct_a", "reader"), ("acct_a", "writer"), ("acct_b", "reader"), ("acct_b", "writer"), (None, "admin")] + extra:
        args = [BIN, "keys", "create", "--db", db, "--role", role, "--json"] + (["--account", account] if account else [])
        out[(account, role)] = json.loads(subprocess.check_output(args))["secret"]
    return out


def event(i, account="acct_a", quantity=None, day=10):
    return {"event_id": f"e{i}", "account_id": account, "meter_id": "tokens", "model_id": "claude-haiku-4-5",
            "quantity": quantity if quantity is not None else 1 + i % 97, "unit": "tokens",
            "timestamp": f"2026-05-{day:02d}T{(i // 60) % 24:02d}:{i % 60:02d}:00Z", "dimensions": {"token_type": "input"}}


def part_kill(work):
    print("kill: SIGKILL during HTTP ingest, retrying clients", flush=True)
    db = os.path.join(work, "kill.db")
    server = Server(db).start()
    port = int(server.url.rsplit(":", 1)[1])
    acked, lock, done = {}, threading.Lock(), threading.Event()

    def client(c):
        for b in range(150):
            batch = [event(c * 100_000 + b * 200 + i, account=f"acct_{c}") for i in range(200)]
            while not done.is_set():
                try:
                    status, body, _ = call(f"http://127.0.0.1:{port}/v1/usage/batch", "POST", body={"events": batch}, timeout=10)
                except (urllib.error.URLError, ConnectionError, socket.timeout, OSError):
                    time.sleep(0.05)
                    continue
                if status == 200:
                    r = json.loads(body)
                    if r["accepted"] + r["duplicates"] == len(batch):
                        with lock:
                            for e in batch:
                                acked[(e["account_id"], e["event_id"])] = e["quantity"]
                        break
                time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(3)]
    for t in threads:
        t.start()
    kills = 0
    while any(t.is_alive() for t in threads) and kills < 10:
        time.sleep(random.uniform(0.1, 0.4))
        server.kill()
        kills += 1
        server = Server(db).start(port)
    for t in threads:
        t.join(timeout=120)
    done.set()
    status, body, _ = call(server.url + "/v1/query/sql", "POST", body={"sql": "SELECT account_id, COUNT(*), SUM(quantity) FROM usage_events GROUP BY account_id"})
    rows = json.loads(body)["rows"] if status == 200 else []
    stored = {r[0]: (r[1], r[2]) for r in rows}
    expected = {}
    for (account, _), q in acked.items():
        n, s = expected.get(account, (0, 0))
        expected[account] = (n + 1, s + q)
    check(stored == expected, f"{kills} SIGKILLs: every acknowledged event stored once ({sum(n for n, _ in expected.values())} events, {stored == expected})")
    for account in expected:
        status, body, _ = call(server.url + f"/v1/accounts/{account}/verify?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z")
        check(status == 200 and json.loads(body)["ok"], f"verify {account} clean after the kills")
    server.stop()


ROLE_RANK = {"reader": 0, "writer": 1, "admin": 2}


def operations(yaml_text):
    """(method, path template, role) for every operation of the OpenAPI document."""
    ops, path = [], None
    lines = yaml_text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^  (/\S*):\s*$", line)
        if m:
            path = m.group(1)
            continue
        m = re.match(r"^    (get|post|put|delete):\s*$", line)
        if m and path:
            role = None
            for follow in lines[i + 1:i + 40]:
                if re.match(r"^    \S", follow) or re.match(r"^  \S", follow):
                    break
                r = re.match(r"^      x-usagebox-role:\s*(\w+)", follow)
                if r:
                    role = r.group(1)
            ops.append((m.group(1).upper(), path, role))
    return ops


def part_authz(work):
    print("authz: every operation x role x account", flush=True)
    db = os.path.join(work, "authz.db")
    subprocess.run([BIN, "demo", "--data-only", "--db", db], check=True, stdout=subprocess.DEVNULL)
    k = keys(db)
    server = Server(db).start()
    _, text, _ = call(server.url + "/openapi.yaml", key=None)
    ops = operations(text.decode())
    secret_marker = "acct_42"  # the demo's data lives on acct_42: no key of acct_a or acct_b may see it
    probes = refusals = 0
    for method, path, role in ops:
        if role is None:
            continue  # /healthz, /openapi.yaml
        for (account, key_role), key in k.items():
            target = "acct_42" if "{account}" in path else None
            uri = path.replace("{account}", "acct_42").replace("{meter_id}", "tokens").replace("{id}", "rec_none")
            query = "?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z" if method == "GET" and "{id}" not in path else ""
            body = {"events": []} if path == "/v1/usage/batch" else ({"sql": "SELECT COUNT(*) FROM usage_events"} if path.endswith("/sql") else
                   ({"from": "2026-05-01T00:00:00Z", "to": "2026-06-01T00:00:00Z"} if path.endswith("/json") else {"period": "2026-05"}))
            status, resp, _ = call(server.url + uri + query, method, key=key, body=body if method in ("POST", "PUT") else None)
            probes += 1
            may_role = ROLE_RANK[key_role] >= ROLE_RANK[role]
            may_account = account is None or target is None
            if not may_role or not may_account:
                refusals += 1
                check(status in (403, 404), f"{method} {path} with {key_role} of {account}: refused ({status})") if status not in (403, 404) else None
                if secret_marker.encode() in resp and b'"error"' not in resp:
                    check(False, f"{method} {path} with {key_role} of {account}: a refusal leaked data")
            else:
                if status in (401, 403):
                    check(False, f"{method} {path} with {key_role} of {account}: allowed operation refused ({status})")
            if account is not None and status == 200 and secret_marker.encode() in resp:
                check(False, f"{method} {path}: a key of {account} read acct_42's data")
    check(probes > 40, f"{probes} authorization probes over {len([o for o in ops if o[2]])} operations, {refusals} expected refusals, none leaked")
    server.stop()


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else 0


def part_bombs(work):
    print(f"bombs: every bomb at once, resident memory under {MEMORY_BOUND_MB} MB", flush=True)
    db = os.path.join(work, "bombs.db")
    subprocess.run([BIN, "demo", "--data-only", "--db", db], check=True, stdout=subprocess.DEVNULL)
    k = keys(db, [("acct_42", "reader")])
    server = Server(db, ["--max-invoice-mb", "8"]).start()
    reader, writer = k[("acct_42", "reader")], k[("acct_b", "writer")]
    peak, enough = [0.0], threading.Event()

    def sample():
        while not enough.is_set():
            peak[0] = max(peak[0], server.rss_mb())
            time.sleep(0.05)

    bombs = [
        ("SELECT zeroblob(2000000000)", 400), ("SELECT length(randomblob(1500000000))", 400),
        ("SELECT printf('%.*c', 2000000000, 'x')", 400), ("SELECT replace(hex(zeroblob(500000)), '0', 'yy')", 400),
        ("SELECT group_concat(hex(zeroblob(1000))) FROM usage_events", 400),
        ("SELECT hex(zeroblob(100000)) FROM usage_events LIMIT 10000", 400),
        ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x, hex(zeroblob(1000)) FROM c ORDER BY x DESC LIMIT 10", 400),
        ("SELECT a.event_id FROM usage_events a, usage_events b ORDER BY a.quantity * b.quantity LIMIT 10", 400),
    ]
    results, latencies, ingest_latencies = [], [], []
    sampler = threading.Thread(target=sample)
    sampler.start()

    def bomb(sql, n):
        # The demo's data is acct_42's: an admin key and acct_42's reader both reach it.
        status, body, headers = call(server.url + "/v1/query/sql", "POST", key=ADMIN if n % 2 else reader, body={"sql": sql}, timeout=60)
        results.append((sql, status, body[:200]))

    threads = [threading.Thread(target=bomb, args=(sql, n)) for sql, _ in bombs for n in range(2)]
    for t in threads:
        t.start()
    i = 0
    while any(t.is_alive() for t in threads):
        t0 = time.monotonic()
        call(server.url + "/healthz", key=None, timeout=30)
        latencies.append((time.monotonic() - t0) * 1000)
        t0 = time.monotonic()
        call(server.url + "/v1/usage/batch", "POST", key=writer, body={"events": [event(900_000 + i, account="acct_b")]}, timeout=30)
        ingest_latencies.append((time.monotonic() - t0) * 1000)
        i += 1
        time.sleep(0.02)
    for t in threads:
        t.join()
    for sql, status, body in results:
        check(status in (400, 429), f"in the storm, bomb answered {status}: {sql[:70]}")
    for sql, _ in bombs:  # and each alone, when no limit on concurrent work stands in for the sandbox's own
        status, body, _ = call(server.url + "/v1/query/sql", "POST", key=reader, body={"sql": sql}, timeout=60)
        check(status == 400, f"alone, bomb answered {status} {json.loads(body).get('error', {}).get('code') if status != 200 else ''}: {sql[:70]}")
    for path in ["/v1/accounts/acct_42/verify?from=0001-01-01T00:00:00Z&to=9999-01-01T00:00:00Z&group_by=day",
                 "/v1/accounts/acct_42/usage?from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&group_by=hour"]:
        status, _, _ = call(server.url + path)
        check(status == 400, f"unbounded answer refused ({status}): {path[:60]}")
    big = b"{" + b" " * (9 << 20) + b"}"
    status, _, _ = call(server.url + "/v1/reconciliations?vendor=anthropic&from=2026-05-01&to=2026-06-01", "POST", key=writer, body=big)
    check(status == 413, f"a 9 MiB invoice over the 8 MiB limit: {status}")
    status, _, _ = call(server.url + "/v1/reconciliations?vendor=anthropic&from=2026-05-01&to=2026-06-01", "POST", key=reader, body=b"{}")
    check(status == 403, f"a reader cannot record a reconciliation: {status}")
    # An account whose events carry the most dimensions of the longest values, of control
    # characters (six bytes each in JSON): every read of it, an empty hour included, once loaded
    # all its keys first (9.5 s and ~200 MB a read), as did verify (1,009 MB at 20,000 such keys).
    # Eight reads and verifies at once, two keys.
    hostile = [{"event_id": f"dims{i}", "account_id": "acct_b", "meter_id": "m", "quantity": 1,
                "timestamp": f"2026-05-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
                "dimensions": {f"d{d:02d}": "\x01" * 240 + f"{d:06d}_{i:08d}" for d in range(32)}} for i in range(800)]
    for start in range(0, len(hostile), 100):
        status, _, _ = call(server.url + "/v1/usage/batch", "POST", key=writer, body={"events": hostile[start:start + 100]}, timeout=60)
        check(status == 200, f"hostile-dimension events ingested: {status}")
    reads = []

    def read(key, path):
        reads.append(call(server.url + path, key=key, timeout=60)[0])
    paths = ["/v1/accounts/acct_b/usage?from=2026-04-01T00:00:00Z&to=2026-04-01T01:00:00Z",
             "/v1/accounts/acct_b/usage?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z&group_by=d00",
             "/v1/accounts/acct_b/verify?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z"]
    readers = [threading.Thread(target=read, args=(key, paths[n % 3])) for n, key in enumerate([writer, ADMIN] * 4)]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    check(all(st in (200, 429) for st in reads) and reads.count(200) >= 4, f"reads of a hostile-dimension account answered: {sorted(reads)}")
    enough.set()
    sampler.join()
    check(peak[0] < MEMORY_BOUND_MB, f"peak resident memory {peak[0]:.0f} MB under {MEMORY_BOUND_MB} MB")
    print(f"  bench /healthz under {len(threads)} bombs: p50 {percentile(latencies, .5):.1f} ms, p99 {percentile(latencies, .99):.1f} ms "
          f"({len(latencies)} probes); another key's ingest p50 {percentile(ingest_latencies, .5):.1f} ms, p99 {percentile(ingest_latencies, .99):.1f} ms")
    server.stop()

TAMPERS = {
    "an event's quantity": "DROP TRIGGER IF EXISTS event_no_update; UPDATE event SET quantity = quantity + 1 WHERE event_id = 'e10'",
    "an event's model": "DROP TRIGGER IF EXISTS event_no_update; UPDATE event SET model_id = 'zzz' WHERE event_id = 'e11'",
    "an event moved to another segment": "DROP TRIGGER IF EXISTS event_no_update; UPDATE event SET segment_id = (SELECT MAX(id) FROM segment) WHERE event_id = 'e12'",
    "a deleted event": "DROP TRIGGER IF EXISTS event_no_delete; DELETE FROM event WHERE event_id = 'e13'",
    "an hourly rollup": "UPDATE rollup_hour SET sum = sum + 7 WHERE (key_id, hour) = (SELECT key_id, hour FROM rollup_hour LIMIT 1)",
    "a daily rollup": "UPDATE rollup_day SET sum = sum + 3 WHERE (key_id, day) = (SELECT key_id, day FROM rollup_day LIMIT 1)",
    "a rollup count": "UPDATE rollup_hour SET count = count + 1 WHERE (key_id, hour) = (SELECT key_id, hour FROM rollup_hour LIMIT 1)",
    "offsetting rollup edits": "UPDATE rollup_hour SET sum = sum + 500 WHERE (key_id, hour) = (SELECT key_id, hour FROM rollup_hour ORDER BY key_id, hour LIMIT 1); "
                               "UPDATE rollup_hour SET sum = sum - 500 WHERE (key_id, hour) = (SELECT key_id, hour FROM rollup_hour ORDER BY key_id DESC, hour DESC LIMIT 1)",
    "a forged chain": "DROP TRIGGER IF EXISTS segment_sealed_is_final; UPDATE segment SET prev_sha256 = 'forged' WHERE id = (SELECT MAX(id) FROM segment WHERE sealed_at IS NOT NULL)",
    "a consistent edit of an open segment (event, rollups and segment total together)":
        "DROP TRIGGER IF EXISTS event_no_update; "
        "UPDATE event SET quantity = quantity + 45 WHERE event_id = 'e160'; "
        "UPDATE rollup_hour SET sum = sum + 45 WHERE (key_id, hour) IN (SELECT k.id, e.ts / 3600000000 FROM event e JOIN rollup_key k ON k.account_id = e.account_id AND k.meter_id = e.meter_id AND k.model_id = e.model_id AND k.kind = e.kind AND k.dimensions = e.dimensions WHERE e.event_id = 'e160'); "
        "UPDATE rollup_day SET sum = sum + 45 WHERE (key_id, day) IN (SELECT k.id, e.ts / 86400000000 FROM event e JOIN rollup_key k ON k.account_id = e.account_id AND k.meter_id = e.meter_id AND k.model_id = e.model_id AND k.kind = e.kind AND k.dimensions = e.dimensions WHERE e.event_id = 'e160'); "
        "UPDATE segment SET sum = sum + 45 WHERE sealed_at IS NULL",
    "a consistent edit of a sealed segment (event, rollups and segment total together)":
        "DROP TRIGGER IF EXISTS event_no_update; DROP TRIGGER IF EXISTS segment_sealed_is_final; "
        "UPDATE event SET quantity = quantity + 1 WHERE event_id = 'e14'; "
        "UPDATE rollup_hour SET sum = sum + 1 WHERE (key_id, hour) IN (SELECT k.id, e.ts / 3600000000 FROM event e JOIN rollup_key k ON k.account_id = e.account_id AND k.meter_id = e.meter_id AND k.model_id = e.model_id AND k.kind = e.kind AND k.dimensions = e.dimensions WHERE e.event_id = 'e14'); "
        "UPDATE rollup_day SET sum = sum + 1 WHERE (key_id, day) IN (SELECT k.id, e.ts / 86400000000 FROM event e JOIN rollup_key k ON k.account_id = e.account_id AND k.meter_id = e.meter_id AND k.model_id = e.model_id AND k.kind = e.kind AND k.dimensions = e.dimensions WHERE e.event_id = 'e14'); "
        "UPDATE segment SET sum = sum + 1 WHERE id = (SELECT segment_id FROM event WHERE event_id = 'e14')",
}


def verify_cli(db, mode):
    out = subprocess.run([BIN, "verify", "--db", db, "--account", "acct_a", "--from", "2026-05-01T00:00:00Z", "--to", "2026-06-01T00:00:00Z",
                          "--mode", mode, "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)["ok"]


def part_tamper(work):
    print("tamper: every kind of edit to the database file, deep and incremental verify", flush=True)
    base = os.path.join(work, "tamper.db")
    # Three sealed segments (serve seals open segments when stopped) and one left open (SIGKILL).
    for b in range(4):
        server = Server(base).start()
        status, _, _ = call(server.url + "/v1/usage/batch", "POST", body={"events": [event(b * 50 + i, day=10 + b) for i in range(50)]})
        check(status == 200, f"tamper seed batch {b} stored")
        server.stop() if b < 3 else server.kill()
    con = sqlite3.connect(base)
    sealed, open_ = con.execute("SELECT COUNT(sealed_at), COUNT(*) - COUNT(sealed_at) FROM segment").fetchone()
    con.close()
    check(sealed >= 3 and open_ == 1, f"{sealed} sealed segments and {open_} open")
    check(verify_cli(base, "deep") is True, "the untouched store verifies (deep)")
    check(verify_cli(base, "incremental") is True, "the untouched store verifies (incremental, after the deep pass)")
    for what, sql in TAMPERS.items():
        db = os.path.join(work, "tampered.db")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(base + suffix):
                shutil.copy(base + suffix, db + suffix)
            elif os.path.exists(db + suffix):
                os.remove(db + suffix)
        try:
            con = sqlite3.connect(db)
            con.executescript(sql)
            con.commit()
            con.close()
        except sqlite3.Error as e:
            check(False, f"{what}: the edit itself failed ({e})")
            continue
        # An edit to a segment re-hashed before it is looked for again at the next scrub or deep pass;
        # from then on every verify, incremental included, reports it.
        before, deep, after = verify_cli(db, "incremental"), verify_cli(db, "deep"), verify_cli(db, "incremental")
        check(deep is False and after is False, f"{what}: caught by deep verify and by every incremental verify after it "
              f"(incremental before the pass ok={before})")


def part_overflow(work):
    print("overflow: one event past 64 bits in a batch", flush=True)
    db = os.path.join(work, "overflow.db")
    server = Server(db).start()
    call(server.url + "/v1/usage/batch", "POST", body={"events": [event(1, quantity=2**63 - 1000)]})
    status, body, _ = call(server.url + "/v1/usage/batch", "POST", body={"events": [event(2, quantity=5, day=11), event(3, quantity=5000), event(4, quantity=7, day=12)]})
    r = json.loads(body)
    check(status == 200 and r["accepted"] == 2 and r["rejected"] == 1 and r["errors"][0]["code"] == "quantity_overflow",
          f"only the overflowing event is refused: {status} {r.get('accepted')}/{r.get('rejected')}")
    status, body, _ = call(server.url + "/v1/accounts/acct_a/verify?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z")
    check(status == 200 and json.loads(body)["ok"], "verify clean")
    status, _, _ = call(server.url + "/v1/usage?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z")
    check(status in (200, 400), f"a read whose total passes 64 bits says so or answers exactly ({status})")
    server.stop()


def part_slow(work):
    print("slow: trickled heads and bodies against --idle-timeout 2 --request-timeout 4", flush=True)
    server = Server(os.path.join(work, "slow.db"), ["--idle-timeout", "2", "--request-timeout", "4"]).start()
    host, port = server.url.split("//")[1].split(":")
    head = f"POST /v1/usage/batch HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    sockets = []
    for i in range(60):
        s = socket.create_connection((host, int(port)))
        s.setblocking(False)
        # Half send a head a byte at a time; half a whole head and then a body a byte at a time.
        sockets.append([s, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + "a" * 200 if i % 2 == 0 else "", i % 2 == 1])
        if i % 2 == 1:
            s.sendall(head.encode())
    start, closed, latencies = time.monotonic(), {}, []
    while len(closed) < len(sockets) and time.monotonic() - start < 15:
        for i, (s, rest, body) in enumerate(sockets):
            if i in closed:
                continue
            try:
                s.send((rest[:1] if not body else "{").encode() or b" ")
                sockets[i][1] = rest[1:]
                if s.recv(4096) == b"":
                    closed[i] = time.monotonic() - start
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = time.monotonic() - start
        t0 = time.monotonic()
        status, _, _ = call(server.url + "/healthz", key=None, timeout=10)
        latencies.append((time.monotonic() - t0) * 1000)
        time.sleep(0.5)
    heads = [t for i, t in closed.items() if i % 2 == 0]
    bodies = [t for i, t in closed.items() if i % 2 == 1]
    check(len(heads) == 30 and max(heads) < 6, f"trickled heads cut off by the idle timeout: {len(heads)}/30, last after {max(heads or [0]):.1f} s")
    check(len(bodies) == 30 and max(bodies) < 8, f"trickled bodies cut off by the request timeout: {len(bodies)}/30, last after {max(bodies or [0]):.1f} s")
    check(status == 200, "the server answered throughout")
    print(f"  bench /healthz beside 60 slow clients: p50 {percentile(latencies, .5):.1f} ms, p99 {percentile(latencies, .99):.1f} ms")
    for s, _, _ in sockets:
        s.close()
    server.stop()


with tempfile.TemporaryDirectory() as work:
    for part in PARTS:
        start = time.monotonic()
        globals()["part_" + part](work)
        print(f"  ({part}: {time.monotonic() - start:.1f} s)", flush=True)
if failures:
    print(f"{len(failures)} attack check(s) failed", file=sys.stderr)
    sys.exit(1)
print("every attack check held")
