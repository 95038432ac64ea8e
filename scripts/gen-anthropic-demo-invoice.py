#!/usr/bin/env python3
"""Writes the Anthropic Admin API cost report for May 2026 that the demo reconciles.

The vendor bills, per day, exactly what the demo's meter holds (read from `usagebox demo
--data-only` grouped by day), except:
  sonnet input   + 520,000 tokens from May 17 (a retried agent loop that never sent events:
                 34,667 a day for ten days, 34,666 for five), a metering gap with a start day
  sonnet cache_read 6,000,000 over the month (a shared system prompt, never metered: pass-through)
  a web search line on May 15 (not token usage)
Amounts are decimal strings in cents, exact. usage: scripts/gen-anthropic-demo-invoice.py [usagebox binary]
"""
import json, subprocess, sys, tempfile, os
from decimal import Decimal

usagebox = sys.argv[1] if len(sys.argv) > 1 else ".build/debug/usagebox"
with tempfile.TemporaryDirectory() as tmp:
    db = os.path.join(tmp, "demo.db")
    subprocess.run([usagebox, "demo", "--data-only", "--db", db], check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([usagebox, "usage", "--db", db, "--account", "acct_42", "--from", "2026-05-01T00:00:00Z",
                          "--to", "2026-06-01T00:00:00Z", "--group-by", "model_id,token_type,day", "--json"],
                         check=True, capture_output=True, text=True).stdout
meter = {(g["model_id"], g["token_type"], g["day"]): g["sum"] for g in json.loads(out)["groups"]}

series = [
    ("claude-opus-4-8", "claude-opus-4-8", "Claude Opus 4.8", "uncached_input_tokens", "input", "Input Tokens", 5),
    ("claude-opus-4-8", "claude-opus-4-8", "Claude Opus 4.8", "output_tokens", "output", "Output Tokens", 25),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "Claude Sonnet 4.5", "uncached_input_tokens", "input", "Input Tokens", 3),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "Claude Sonnet 4.5", "output_tokens", "output", "Output Tokens", 15),
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "Claude Sonnet 4.5", "cache_read_input_tokens", "cache_read", "Cache Read Input Tokens", Decimal("0.30")),
    ("claude-haiku-4-5-20251001", "claude-haiku-4-5", "Claude Haiku 4.5", "uncached_input_tokens", "input", "Input Tokens", 1),
    ("claude-haiku-4-5-20251001", "claude-haiku-4-5", "Claude Haiku 4.5", "output_tokens", "output", "Output Tokens", 5),
]
days = 31
data = []
for d in range(days):
    day = f"2026-05-{d+1:02d}"
    results = []
    for model, canonical, display, tt, metered_type, label, rate in series:
        if metered_type == "cache_read":
            tokens = 6_000_000 // days + (1 if d < 6_000_000 % days else 0)
        else:
            tokens = meter[(canonical, metered_type, day)]
            if canonical == "claude-sonnet-4-5" and metered_type == "input" and d + 1 >= 17:
                tokens += 34_667 if d + 1 < 27 else 34_666
        cents = Decimal(tokens) * Decimal(rate) / Decimal(1_000_000) * 100
        results.append({"amount": format(cents.normalize(), "f"), "context_window": "0-200k", "cost_type": "tokens", "currency": "USD",
                        "description": f"{display} Usage - {label}", "inference_geo": "global", "model": model,
                        "service_tier": "standard", "token_type": tt, "workspace_id": "wrkspc_01KataDemo42"})
    if d == 14:
        results.append({"amount": "1250", "context_window": None, "cost_type": "web_search", "currency": "USD",
                        "description": "Web Search Usage", "inference_geo": None, "model": None, "service_tier": None,
                        "token_type": None, "workspace_id": "wrkspc_01KataDemo42"})
    data.append({"starting_at": f"{day}T00:00:00Z",
                 "ending_at": (f"2026-05-{d+2:02d}T00:00:00Z" if d + 1 < days else "2026-06-01T00:00:00Z"),
                 "results": results})
print(json.dumps({"data": data, "has_more": False, "next_page": None}, indent=1))
