#!/usr/bin/env python3
"""Writes the Anthropic Admin API cost report for May 2026 that the demo reconciles.

Per model and token type (tokens, USD per million):
  opus   input 31,640,000 @5, output 10,540,000 @25
  sonnet input 123,420,000 @3 (122,900,000 metered + 520,000 never sent as events),
         output 68,500,000 @15, cache_read 6,000,000 @0.30 (a shared system prompt, never metered)
  haiku  input 66,045,000 @1, output 22,015,000 @5
Spread over 31 daily buckets; amounts are decimal strings in cents, exact (no rounding needed).
"""
import json
from decimal import Decimal

series = [
    ("claude-opus-4-8", "Claude Opus 4.8", "uncached_input_tokens", "Input Tokens", 31_640_000, 5),
    ("claude-opus-4-8", "Claude Opus 4.8", "output_tokens", "Output Tokens", 10_540_000, 25),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "uncached_input_tokens", "Input Tokens", 123_420_000, 3),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "output_tokens", "Output Tokens", 68_500_000, 15),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "cache_read_input_tokens", "Cache Read Input Tokens", 6_000_000, Decimal("0.30")),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "uncached_input_tokens", "Input Tokens", 66_045_000, 1),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "output_tokens", "Output Tokens", 22_015_000, 5),
]
days = 31
data = []
for d in range(days):
    results = []
    for model, display, tt, label, total, rate in series:
        tokens = total // days + (1 if d < total % days else 0)
        cents = Decimal(tokens) * Decimal(rate) / Decimal(1_000_000) * 100
        amount = format(cents.normalize(), "f")
        results.append({"amount": amount, "context_window": "0-200k", "cost_type": "tokens", "currency": "USD",
                        "description": f"{display} Usage - {label}", "inference_geo": "global", "model": model,
                        "service_tier": "standard", "token_type": tt, "workspace_id": "wrkspc_01KataDemo42"})
    if d == 14:
        results.append({"amount": "1250", "context_window": None, "cost_type": "web_search", "currency": "USD",
                        "description": "Web Search Usage", "inference_geo": None, "model": None, "service_tier": None,
                        "token_type": None, "workspace_id": "wrkspc_01KataDemo42"})
    data.append({"starting_at": f"2026-05-{d+1:02d}T00:00:00Z",
                 "ending_at": (f"2026-05-{d+2:02d}T00:00:00Z" if d + 1 < days else "2026-06-01T00:00:00Z"),
                 "results": results})
print(json.dumps({"data": data, "has_more": False, "next_page": None}, indent=1))
