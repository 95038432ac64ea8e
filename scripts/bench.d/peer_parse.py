#!/usr/bin/env python3
"""Peers for invoice parsing: csv, xml.etree.ElementTree.iterparse, json. Prints MB/s."""
import csv, json, os, sys, time
import xml.etree.ElementTree as ET
kind, path = sys.argv[1], sys.argv[2]
size = os.path.getsize(path)
start = time.monotonic()
n = 0
if kind == "csv":
    with open(path, newline="", encoding="utf-8") as f:
        for _ in csv.reader(f): n += 1
elif kind == "xml":
    for ev, el in ET.iterparse(path, events=("start", "end")):
        if ev == "start": n += 1
        else: el.clear()
else:
    with open(path) as f: d = json.load(f)
    n = len(d.get("data", []))
el = time.monotonic() - start
print(json.dumps({"format": kind, "bytes": size, "records": n, "seconds": round(el, 3), "mb_per_s": round(size / 1e6 / el, 1)}))
