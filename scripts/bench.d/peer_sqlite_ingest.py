#!/usr/bin/env python3
"""Peer: Python's sqlite3 executemany into a table with the same unique key as UsageBox's events.

usage: peer_sqlite_ingest.py EVENTS.ndjson DB   — prints {"events", "seconds", "events_per_second"}
"""
import json, sqlite3, sys, time
src, db = sys.argv[1], sys.argv[2]
con = sqlite3.connect(db)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=FULL")
con.execute("""CREATE TABLE event (seq INTEGER PRIMARY KEY, account_id TEXT NOT NULL, event_id TEXT NOT NULL,
  meter_id TEXT NOT NULL, model_id TEXT, kind TEXT NOT NULL, quantity INTEGER NOT NULL, unit TEXT, ts TEXT NOT NULL,
  dimensions TEXT, UNIQUE (account_id, event_id))""")
start = time.monotonic()
n, batch = 0, []
def flush():
    con.executemany("INSERT OR IGNORE INTO event (account_id, event_id, meter_id, model_id, kind, quantity, unit, ts, dimensions) "
                    "VALUES (?,?,?,?,?,?,?,?,?)", batch)
    con.commit()
with open(src) as f:
    for line in f:
        e = json.loads(line)
        batch.append((e["account_id"], e["event_id"], e["meter_id"], e.get("model_id"), e.get("kind", "Usage"),
                      int(e["quantity"]), e.get("unit"), e["timestamp"], json.dumps(e.get("dimensions") or {}, sort_keys=True)))
        n += 1
        if len(batch) == 20000:
            flush(); batch = []
if batch:
    flush()
el = time.monotonic() - start
print(json.dumps({"events": n, "seconds": round(el, 3), "events_per_second": int(n / el)}))
