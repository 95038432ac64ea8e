#!/usr/bin/env python3
"""Deterministic large invoice files for parse benchmarks.

usage: gen-invoices.py csv|xml|json SIZE_MB > file
  csv:  an Anthropic Console cost export (quoted fields, display names)
  xml:  one UBL 2.1 invoice with many InvoiceLines (namespaced)
  json: an Anthropic Admin API cost report (daily buckets, decimal-string cents)
"""
import json, sys

kind, size = sys.argv[1], int(sys.argv[2]) * 1_000_000
out = sys.stdout
models = [("Claude Opus 4.8", "claude-opus-4-8"), ("Claude Sonnet 4.5", "claude-sonnet-4-5"), ("Claude Haiku 4.5", "claude-haiku-4-5")]
types = ["input_no_cache", "output", "input_cache_read"]
written, i = 0, 0

def emit(s):
    global written
    out.write(s)
    written += len(s)

if kind == "csv":
    emit("usage_date_utc,model,workspace,api_key,usage_type,context_window,token_type,cost_usd,list_price_usd,cost_type,inference_geo,speed,api_key_id,api_key_status\n")
    while written < size:
        d, m, t = i % 28 + 1, models[i % 3][0], types[(i // 3) % 3]
        emit(f'2026-05-{d:02d},{m},"Workspace {i % 50}","key, {i % 200}",message,≤ 200k,{t},{(i * 37) % 100000 / 1000:.3f},{(i * 37) % 100000 / 1000:.3f},token,not_available,,apikey_{i % 200:05d},active\n')
        i += 1
elif kind == "xml":
    emit('<?xml version="1.0" encoding="UTF-8"?>\n<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" '
         'xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" '
         'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">\n'
         '<cbc:ID>INV-2026-05</cbc:ID><cbc:IssueDate>2026-06-01</cbc:IssueDate><cbc:DocumentCurrencyCode>USD</cbc:DocumentCurrencyCode>\n')
    while written < size - 100:
        m = models[i % 3][1]
        emit(f'<cac:InvoiceLine><cbc:ID>{i}</cbc:ID><cbc:InvoicedQuantity unitCode="C62">{(i * 7919) % 100000 + 1}</cbc:InvoicedQuantity>'
             f'<cbc:LineExtensionAmount currencyID="USD">{(i * 37) % 100000 / 100:.2f}</cbc:LineExtensionAmount>'
             f'<cac:Item><cbc:Name>{m} {types[(i // 3) % 3]}</cbc:Name><cac:ClassifiedTaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>0</cbc:Percent>'
             f'<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:ClassifiedTaxCategory></cac:Item>'
             f'<cac:Price><cbc:PriceAmount currencyID="USD">0.000003</cbc:PriceAmount></cac:Price></cac:InvoiceLine>\n')
        i += 1
    emit('</Invoice>\n')
else:
    emit('{"data":[')
    first = True
    while written < size - 100:
        rows = []
        for j in range(300):
            m = models[(i + j) % 3][1]
            rows.append({"amount": f"{((i + j) * 37) % 100000 / 1000}", "currency": "USD", "cost_type": "tokens", "model": m,
                         "token_type": "uncached_input_tokens", "service_tier": "standard", "context_window": "0-200k",
                         "workspace_id": f"wrkspc_{(i + j) % 50}", "description": f"{m} Usage - Input Tokens"})
        emit(("" if first else ",") + json.dumps({"starting_at": f"2026-05-{i % 28 + 1:02d}T00:00:00Z", "results": rows}))
        first = False
        i += 300
    emit('],"has_more":false,"next_page":null}\n')
