#!/usr/bin/env python3
"""An org of N accounts for timing an account-map reconcile (BENCHMARKS.md, "an org of many
accounts"): every account meters Sonnet input and output at noon every day of May 2026; the
Anthropic cost report bills each account's workspace per day, 3,000 input tokens more from May 10.

usage: scripts/gen-org.py N OUTDIR   (writes meter.ndjson, invoice.json, map.json)
then:  usagebox ingest --db OUTDIR/db OUTDIR/meter.ndjson
       usagebox reconcile --db OUTDIR/db --vendor anthropic --invoice OUTDIR/invoice.json \\
           --from 2026-05-01 --to 2026-06-01 --account-map OUTDIR/map.json
"""
import json
import os
import sys
from decimal import Decimal

n, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(out, exist_ok=True)
accounts = {f"acct_{i:05d}": f"wrkspc_{i:05d}" for i in range(n)}
names = {"input": "uncached_input_tokens", "output": "output_tokens"}
days = []
with open(os.path.join(out, "meter.ndjson"), "w") as meter:
    for day in range(1, 32):
        results = []
        for account, workspace in accounts.items():
            for token_type, tokens, per_million in (("input", 400_000, 3), ("output", 100_000, 15)):
                meter.write(json.dumps({
                    "event_id": f"e_{token_type}_{day}", "account_id": account, "meter_id": "claude_tokens",
                    "model_id": "claude-sonnet-4-5", "quantity": tokens, "unit": "tokens",
                    "timestamp": f"2026-05-{day:02d}T12:00:00Z",
                    "dimensions": {"token_type": token_type, "vendor": "anthropic"}}) + "\n")
                billed = tokens + (3_000 if token_type == "input" and day >= 10 else 0)
                cents = (Decimal(billed) * per_million / Decimal(1_000_000) * 100).normalize()
                results.append({
                    "amount": format(cents, "f"), "context_window": "0-200k", "cost_type": "tokens", "currency": "USD",
                    "description": "tokens", "inference_geo": "global", "model": "claude-sonnet-4-5-20250929",
                    "service_tier": "standard", "token_type": names[token_type], "workspace_id": workspace})
        end = f"2026-05-{day + 1:02d}T00:00:00Z" if day < 31 else "2026-06-01T00:00:00Z"
        days.append({"starting_at": f"2026-05-{day:02d}T00:00:00Z", "ending_at": end, "results": results})
with open(os.path.join(out, "invoice.json"), "w") as f:
    json.dump({"data": days, "has_more": False, "next_page": None}, f)
with open(os.path.join(out, "map.json"), "w") as f:
    json.dump({workspace: account for account, workspace in accounts.items()}, f)
