#!/usr/bin/env bash
# The kata's curl commands, verbatim but for the host, against a running `usagebox serve`.
# usage: USAGEBOX_KEY=… scripts/kata.sh [http://127.0.0.1:8080]
# Each response is printed after a '### name' line, so tests (and people) can read them.
set -euo pipefail
HOST="${1:-http://127.0.0.1:8080}"
: "${USAGEBOX_KEY:?set USAGEBOX_KEY to a key of the server}"

echo "### step1-usage-by-model"
curl -s "$HOST/v1/accounts/acct_42/usage?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z&group_by=model_id" \
-H "Authorization: Bearer $USAGEBOX_KEY"
echo
echo "### step2-verify"
curl -s "$HOST/v1/accounts/acct_42/verify?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z" \
-H "Authorization: Bearer $USAGEBOX_KEY"
echo
echo "### step4-explain"
curl -s "$HOST/v1/accounts/acct_42/explain?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z" \
-H "Authorization: Bearer $USAGEBOX_KEY"
echo
echo "### step4-token-type"
curl -s "$HOST/v1/accounts/acct_42/usage?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z&model_id=claude-sonnet-4-5&group_by=token_type" \
-H "Authorization: Bearer $USAGEBOX_KEY"
echo
echo "### step6-correction"
curl -s -X POST $HOST/v1/usage/batch \
-H "Authorization: Bearer $USAGEBOX_KEY" \
-H "Content-Type: application/json" \
-d '{
"events": [{
"event_id": "evt_2026-05_recon_acct42_sonnet_0001",
"account_id": "acct_42",
"meter_id": "claude_tokens",
"model_id": "claude-sonnet-4-5",
"kind": "Correction",
"correction_ref": "recon_may_2026_vendor_anthropic",
"quantity": 520000,
"unit": "tokens",
"timestamp": "2026-05-31T23:59:59Z",
"dimensions": { "reason": "untracked_retry_loop", "source": "vendor_reconciliation" }
}]
}'
echo
echo "### step6-explain-again"
curl -s "$HOST/v1/accounts/acct_42/explain?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z" \
-H "Authorization: Bearer $USAGEBOX_KEY"
echo
echo "### variation-per-customer"
curl -s "$HOST/v1/accounts/acct_42/usage?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z&model_id=claude-sonnet-4-5&group_by=account_id" \
-H "Authorization: Bearer $USAGEBOX_KEY"
echo
echo "### variation-sql"
curl -s -X POST "$HOST/v1/query/sql" \
-H "Authorization: Bearer $USAGEBOX_KEY" \
-H "Content-Type: application/json" \
-d "{\"sql\": \"SELECT model_id, SUM(quantity) FROM usage_events WHERE account_id='acct_42' GROUP BY model_id\"}"
echo
echo "### variation-json-query"
curl -s -X POST "$HOST/v1/query/json" \
-H "Authorization: Bearer $USAGEBOX_KEY" \
-H "Content-Type: application/json" \
-d '{"account_id": "acct_42", "from": "2026-05-01T00:00:00Z", "to": "2026-06-01T00:00:00Z",
     "filters": [{"field": "token_type", "op": "in", "value": ["input", "output"]}],
     "group_by": ["model_id"], "metrics": ["sum", "count"]}'
echo
echo "### variation-verify-by-day"
curl -s "$HOST/v1/accounts/acct_42/verify?from=2026-05-01T00:00:00Z&to=2026-06-01T00:00:00Z&group_by=day" \
-H "Authorization: Bearer $USAGEBOX_KEY"
echo
