#!/usr/bin/env python3
"""The bench events as CSV (account_id,event_id,meter_id,model_id,quantity,ts,token_type) for `.import` and ClickHouse."""
import json, sys
out = sys.stdout
for line in open(sys.argv[1]):
    e = json.loads(line)
    out.write(f'{e["account_id"]},{e["event_id"]},{e["meter_id"]},{e["model_id"]},{e["quantity"]},{e["timestamp"]},{e["dimensions"]["token_type"]}\n')
