/// The OpenAPI 3 description served at `GET /openapi.yaml`. Kept beside the router it describes;
/// `scripts/api-fuzz` runs schemathesis against a live server to keep the two true to each other.
enum OpenAPIDocument {
    static let yaml = #"""
openapi: 3.0.3
info:
  title: UsageBox
  version: "1.0"
  description: >
    A metering database for AI usage and month-end vendor reconciliation. Every /v1 route needs
    `Authorization: Bearer <key>`. Errors are `{"error": {"code", "message", "field"}}`.
    Each operation names the least key role it needs in `x-usagebox-role` (reader < writer <
    admin); a key bound to an account acts on that account only. A reader may run a reconciliation
    with dry_run=true, which records nothing.
servers:
  - url: http://127.0.0.1:8080
security:
  - bearer: []
paths:
  /healthz:
    get:
      summary: Liveness
      security: []
      responses:
        "200":
          description: Up
          content:
            application/json:
              schema:
                type: object
                required: [status]
                properties:
                  status: {type: string}
  /openapi.yaml:
    get:
      summary: This document
      security: []
      responses:
        "200":
          description: The OpenAPI description
          content:
            application/yaml:
              schema: {type: string}
  /v1/usage/batch:
    post:
      x-usagebox-role: writer
      summary: Ingest up to 10,000 events; each gets its own outcome
      description: >
        Each event is validated on its own (docs/events.md): an event that does not match the Event
        schema is answered in `errors` as rejected with a code, and the batch still answers 200.
        Only a body that is not `{"events": [...]}` is a 400.
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [events]
              properties:
                events:
                  type: array
                  description: >
                    Events, each ideally an Event; invalid ones are rejected one by one. At most
                    10,000 events and 16 MiB per request: beyond that the answer is 413.
                  items: {}
      responses:
        "200":
          description: Per-event outcomes
          content:
            application/json:
              schema: {$ref: "#/components/schemas/BatchResponse"}
        "400": {$ref: "#/components/responses/BadRequest"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
        "403": {$ref: "#/components/responses/Forbidden"}
        "413": {$ref: "#/components/responses/TooLarge"}
  /v1/accounts/{account}/usage:
    get:
      x-usagebox-role: reader
      summary: Usage of one account, grouped
      parameters:
        - $ref: "#/components/parameters/account"
        - $ref: "#/components/parameters/from"
        - $ref: "#/components/parameters/to"
        - $ref: "#/components/parameters/group_by"
        - $ref: "#/components/parameters/source"
        - $ref: "#/components/parameters/model_id"
        - $ref: "#/components/parameters/meter_id"
        - $ref: "#/components/parameters/kind"
      responses:
        "200":
          description: Groups
          content:
            application/json:
              schema: {$ref: "#/components/schemas/UsageResponse"}
        "400": {$ref: "#/components/responses/BadRequest"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
        "403": {$ref: "#/components/responses/Forbidden"}
  /v1/usage:
    get:
      x-usagebox-role: reader
      summary: Usage across every account the key may see, grouped
      parameters:
        - $ref: "#/components/parameters/from"
        - $ref: "#/components/parameters/to"
        - $ref: "#/components/parameters/group_by"
        - $ref: "#/components/parameters/source"
        - $ref: "#/components/parameters/model_id"
        - $ref: "#/components/parameters/meter_id"
        - $ref: "#/components/parameters/kind"
        - name: account_id
          in: query
          schema: {type: string}
      responses:
        "200":
          description: Groups
          content:
            application/json:
              schema: {$ref: "#/components/schemas/UsageResponse"}
        "400": {$ref: "#/components/responses/BadRequest"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
  /v1/accounts/{account}/verify:
    get:
      x-usagebox-role: reader
      summary: Raw-vs-rollup check and segment re-hash
      parameters:
        - $ref: "#/components/parameters/account"
        - $ref: "#/components/parameters/from"
        - $ref: "#/components/parameters/to"
        - name: group_by
          in: query
          schema: {type: string, enum: [day]}
        - name: mode
          in: query
          schema: {type: string, enum: [deep, incremental]}
      responses:
        "200":
          description: The report (ok false on drift or corruption)
          content:
            application/json:
              schema: {$ref: "#/components/schemas/VerifyReport"}
        "400": {$ref: "#/components/responses/BadRequest"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
        "403": {$ref: "#/components/responses/Forbidden"}
  /v1/accounts/{account}/explain:
    get:
      x-usagebox-role: reader
      summary: Totals, breakdown, segment provenance and corrections
      parameters:
        - $ref: "#/components/parameters/account"
        - $ref: "#/components/parameters/from"
        - $ref: "#/components/parameters/to"
      responses:
        "200":
          description: The explanation
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ExplainReport"}
        "400": {$ref: "#/components/responses/BadRequest"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
        "403": {$ref: "#/components/responses/Forbidden"}
  /v1/accounts/{account}/periods/close:
    post:
      x-usagebox-role: writer
      summary: Close a calendar month (closing twice returns the first closed_at)
      parameters:
        - $ref: "#/components/parameters/account"
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [period]
              properties:
                period: {type: string, pattern: "^[0-9]{4}-(0[1-9]|1[0-2])$", example: "2026-05"}
      responses:
        "200":
          description: The closed period
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Period"}
        "400": {$ref: "#/components/responses/BadRequest"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
        "403": {$ref: "#/components/responses/Forbidden"}
  /v1/accounts/{account}/periods:
    get:
      x-usagebox-role: reader
      summary: Closed months of an account
      parameters:
        - $ref: "#/components/parameters/account"
      responses:
        "200":
          description: Periods
          content:
            application/json:
              schema:
                type: object
                required: [account_id, periods]
                properties:
                  account_id: {type: string}
                  periods:
                    type: array
                    items: {$ref: "#/components/schemas/Period"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
        "403": {$ref: "#/components/responses/Forbidden"}
  /v1/query/sql:
    post:
      x-usagebox-role: reader
      summary: Read-only SQL over the usage_events view of the accounts the key may see
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              required: [sql]
              properties:
                sql: {type: string, minLength: 1, example: "SELECT model_id, SUM(quantity) FROM usage_events GROUP BY model_id"}
      responses:
        "200":
          description: Columns and rows
          content:
            application/json:
              schema:
                type: object
                required: [columns, rows, truncated]
                properties:
                  columns: {type: array, items: {type: string}}
                  rows: {type: array, items: {type: array, items: {}}}
                  truncated: {type: boolean}
        "400": {$ref: "#/components/responses/BadRequest"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
  /v1/query/json:
    post:
      x-usagebox-role: reader
      summary: A structured grouped query
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/JSONQuery"}
      responses:
        "200":
          description: Groups, one field per metric
          content:
            application/json:
              schema: {$ref: "#/components/schemas/UsageResponse"}
        "400": {$ref: "#/components/responses/BadRequest"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
        "403": {$ref: "#/components/responses/Forbidden"}
  /v1/meters:
    get:
      x-usagebox-role: reader
      summary: Meters on the accounts the key may see
      responses:
        "200":
          description: Meters
          content:
            application/json:
              schema:
                type: object
                required: [meters]
                properties:
                  meters:
                    type: array
                    items: {$ref: "#/components/schemas/Meter"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
  /v1/meters/{meter_id}:
    put:
      x-usagebox-role: admin
      summary: Set a meter's unit and the dimensions its rollups keep (admin)
      parameters:
        - name: meter_id
          in: path
          required: true
          schema: {type: string, pattern: "^[A-Za-z0-9_.:-]{1,200}$"}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                unit: {type: string, nullable: true, minLength: 1, maxLength: 64}
                rollup_dimensions: {type: array, nullable: true, items: {type: string, minLength: 1, maxLength: 64}}
              additionalProperties: false
      responses:
        "200":
          description: The meter
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Meter"}
        "400": {$ref: "#/components/responses/BadRequest"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
        "403": {$ref: "#/components/responses/Forbidden"}
        "409": {$ref: "#/components/responses/Conflict"}
  /v1/vendors:
    get:
      x-usagebox-role: reader
      summary: The registered vendor plugins
      responses:
        "200":
          description: Plugins with their formats and rate-card versions
          content:
            application/json:
              schema:
                type: object
                required: [vendors]
                properties:
                  vendors:
                    type: array
                    items:
                      type: object
                      required: [id, name, formats, parsers, rate_card_version]
                      properties:
                        id: {type: string}
                        name: {type: string}
                        formats: {type: array, items: {type: string}}
                        parsers: {type: array, items: {type: string}}
                        rate_card_version: {type: string, nullable: true}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
  /v1/reconciliations:
    post:
      x-usagebox-role: reader   # a reader may only dry_run; recording a run needs a writer
      summary: Reconcile a vendor invoice against the meter
      description: >
        Either the invoice file as the body with vendor, from, to (and account) in the query, or a
        JSON body with `invoices` (base64) and every option the CLI has. From and to are dates
        (00:00 UTC) or RFC 3339 times in UTC. Verify drift answers 409. The report says whether the
        evidence is conclusive; an inconclusive report proposes no corrections.
      parameters:
        - name: vendor
          in: query
          schema: {type: string, example: anthropic}
        - name: from
          in: query
          schema: {type: string, example: "2026-05-01T00:00:00Z"}
        - name: to
          in: query
          schema: {type: string, example: "2026-06-01T00:00:00Z"}
        - name: account
          in: query
          schema: {type: string}
        - name: invoice_scope
          in: query
          schema: {type: string, enum: [as_given, account]}
        - name: dry_run
          in: query
          description: Run and answer without recording (200); what a reader key may do. Recording needs a writer (201).
          schema: {type: string, enum: ["true", "false"]}
        - name: meter_id
          in: query
          schema: {type: string}
        - name: deep_verify
          in: query
          schema: {type: string, enum: ["true", "false"]}
        - name: allow_drift
          in: query
          schema: {type: string, enum: ["true", "false"]}
        - name: allow_overlap
          in: query
          schema: {type: string, enum: ["true", "false"]}
        - name: name
          in: query
          schema: {type: string}
      requestBody:
        required: true
        content:
          application/json:
            schema:
              oneOf:
                - {$ref: "#/components/schemas/ReconciliationRequest"}
                - {type: object, description: "an invoice file (JSON export)"}
          text/csv:
            schema: {type: string}
          application/xml:
            schema: {type: string}
      responses:
        "201":
          description: The report, recorded
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ReconciliationReport"}
        "200":
          description: The report of a dry run (not recorded)
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ReconciliationReport"}
        "400": {$ref: "#/components/responses/BadRequest"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
        "403": {$ref: "#/components/responses/Forbidden"}
        "409": {$ref: "#/components/responses/Conflict"}
        "413": {$ref: "#/components/responses/TooLarge"}
  /v1/reconciliations/{id}:
    get:
      x-usagebox-role: reader
      summary: A stored reconciliation report
      parameters:
        - name: id
          in: path
          required: true
          schema: {type: string}
      responses:
        "200":
          description: The report as recorded
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ReconciliationReport"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
        "403": {$ref: "#/components/responses/Forbidden"}
        "404": {$ref: "#/components/responses/NotFound"}
  /v1/reconciliations/{id}/apply:
    post:
      x-usagebox-role: writer
      summary: Post a report's proposed corrections (applying twice answers duplicates)
      description: >
        Posts `corrections`; with confirm_large=true also `held`. An inconclusive report is refused
        with 409 (code inconclusive). Needs a writer key.
      parameters:
        - name: id
          in: path
          required: true
          schema: {type: string}
        - name: confirm_large
          in: query
          schema: {type: string, enum: ["true", "false"]}
      responses:
        "200":
          description: The batch answer
          content:
            application/json:
              schema: {$ref: "#/components/schemas/BatchResponse"}
        "400": {$ref: "#/components/responses/BadRequest"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
        "403": {$ref: "#/components/responses/Forbidden"}
        "404": {$ref: "#/components/responses/NotFound"}
        "409": {$ref: "#/components/responses/Conflict"}
  /v1/reconciliations/{id}/revert:
    post:
      x-usagebox-role: writer
      summary: Post the corrections that undo an applied report (reverting twice posts nothing new)
      description: >
        Each posted correction gets a compensating one with the opposite quantity and the
        correction_ref `<ref>_revert`. A report that posted nothing answers 409. Needs a writer key.
      parameters:
        - name: id
          in: path
          required: true
          schema: {type: string}
      responses:
        "200":
          description: The batch answer
          content:
            application/json:
              schema: {$ref: "#/components/schemas/BatchResponse"}
        "400": {$ref: "#/components/responses/BadRequest"}
        "401": {$ref: "#/components/responses/Unauthorized"}
        "429": {$ref: "#/components/responses/TooMany"}
        "403": {$ref: "#/components/responses/Forbidden"}
        "404": {$ref: "#/components/responses/NotFound"}
        "409": {$ref: "#/components/responses/Conflict"}
components:
  securitySchemes:
    bearer:
      type: http
      scheme: bearer
  parameters:
    account:
      name: account
      in: path
      required: true
      schema: {type: string, example: acct_42}
    from:
      name: from
      in: query
      required: true
      description: RFC 3339 with offset, inclusive
      schema: {type: string, format: date-time, example: "2026-05-01T00:00:00Z"}
    to:
      name: to
      in: query
      required: true
      description: RFC 3339 with offset, exclusive; after from
      schema: {type: string, format: date-time, example: "2026-06-01T00:00:00Z"}
    group_by:
      name: group_by
      in: query
      description: Comma-separated fields (model_id, meter_id, account_id, kind, unit, hour, day, month), dimensions, or dim.NAME
      schema: {type: string, example: model_id}
    source:
      name: source
      in: query
      schema: {type: string, enum: [auto, rollup, raw]}
    model_id:
      name: model_id
      in: query
      schema: {type: string}
    meter_id:
      name: meter_id
      in: query
      schema: {type: string}
    kind:
      name: kind
      in: query
      schema: {type: string, enum: [Usage, Correction]}
  responses:
    BadRequest:
      description: Invalid request, naming the field
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Error"}
    TooMany:
      description: >
        Too many expensive requests at once (per key or on the server), or too many failed
        authentications from this address in the last minute; Retry-After says when to try again.
      headers:
        Retry-After:
          schema: {type: integer}
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Error"}
    Unauthorized:
      description: Missing or unknown key
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Error"}
    Forbidden:
      description: The key may not see the account or do this
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Error"}
    TooLarge:
      description: Over 16 MiB or over 10,000 events
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Error"}
    NotFound:
      description: No such resource
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Error"}
    Conflict:
      description: Conflicts with stored state
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Error"}
  schemas:
    Error:
      type: object
      required: [error]
      properties:
        error:
          type: object
          required: [code, message]
          properties:
            code: {type: string}
            message: {type: string}
            field: {type: string}
    Event:
      type: object
      required: [event_id, account_id, meter_id, quantity, timestamp]
      properties:
        event_id: {type: string, pattern: "^[A-Za-z0-9_.:-]{1,200}$"}
        account_id: {type: string, pattern: "^[A-Za-z0-9_.:-]{1,200}$"}
        meter_id: {type: string, pattern: "^[A-Za-z0-9_.:-]{1,200}$"}
        model_id: {type: string, pattern: "^[A-Za-z0-9_.:-]{1,200}$"}
        kind: {type: string, enum: [Usage, Correction]}
        correction_ref: {type: string}
        quantity:
          oneOf:
            - {type: integer, format: int64}
            - {type: string, pattern: "^-?[0-9]{1,19}$"}
        unit: {type: string}
        timestamp: {type: string, format: date-time}
        dimensions:
          type: object
          maxProperties: 32
          additionalProperties: {type: string, maxLength: 256}
    BatchResponse:
      type: object
      required: [accepted, duplicates, conflicts, rejected, errors]
      properties:
        accepted: {type: integer}
        duplicates: {type: integer}
        conflicts: {type: integer}
        rejected: {type: integer}
        errors:
          type: array
          items:
            type: object
            required: [index, status, code, message]
            properties:
              index: {type: integer}
              event_id: {type: string, nullable: true}
              status: {type: string, enum: [rejected, conflict]}
              code: {type: string}
              message: {type: string}
              field: {type: string}
    UsageResponse:
      type: object
      required: [source, groups]
      properties:
        source: {type: string, enum: [rollup, raw]}
        groups:
          type: array
          items:
            type: object
            description: One member per group_by name (string or null), then the metrics
            additionalProperties: true
    VerifyReport:
      type: object
      required: [ok, mode, rollup_sum, raw_sum, drift, segments_checked, segments_corrupt, mismatches]
      properties:
        ok: {type: boolean}
        mode: {type: string, enum: [deep, incremental]}
        rollup_sum: {type: integer}
        raw_sum: {type: integer}
        drift: {type: integer}
        segments_checked: {type: integer}
        segments_corrupt: {type: integer}
        mismatches: {type: array, items: {type: object}}
        corrupt_segments: {type: array, items: {type: object}}
        days:
          type: array
          items:
            type: object
            required: [day, rollup_sum, raw_sum, drift]
            properties:
              day: {type: string}
              rollup_sum: {type: integer}
              raw_sum: {type: integer}
              drift: {type: integer}
    ExplainReport:
      type: object
      required: [account_id, from, to, totals, breakdown, segments, chain_head, corrections]
      properties:
        account_id: {type: string}
        from: {type: string}
        to: {type: string}
        totals: {type: object}
        breakdown: {type: array, items: {type: object}}
        segments: {type: array, items: {type: object}}
        chain_head: {type: string, nullable: true}
        integrity:
          type: object
          nullable: true
          description: Where the independent re-hashing of the account's sealed segments stands (verify and the server's scrub).
          properties:
            sealed_segments: {type: integer}
            verified: {type: integer}
            corrupt: {type: integer}
            pending: {type: integer}
            oldest_verification: {type: string, nullable: true}
        corrections: {type: array, items: {type: object}}
    Period:
      type: object
      required: [account_id, period, closed_at]
      properties:
        account_id: {type: string}
        period: {type: string}
        closed_at: {type: string}
    Meter:
      type: object
      required: [meter_id, unit, rollup_dimensions]
      properties:
        meter_id: {type: string}
        unit: {type: string, nullable: true}
        rollup_dimensions: {type: array, nullable: true, items: {type: string}}
    ReconciliationRequest:
      type: object
      required: [vendor, from, to, invoices]
      additionalProperties: false
      properties:
        vendor: {type: string}
        from: {type: string, description: "a date (00:00 UTC) or an RFC 3339 time in UTC"}
        to: {type: string}
        account_id: {type: string}
        invoice_scope: {type: string, enum: [as_given, account]}
        invoices:
          type: array
          minItems: 1
          items:
            type: object
            required: [name, content_base64]
            properties:
              name: {type: string}
              content_base64: {type: string, format: byte}
        rules_yaml: {type: string}
        rules_name: {type: string}
        rate_card_yaml: {type: string}
        rate_card_name: {type: string}
        account_map: {type: object, additionalProperties: {type: string}}
        model_map: {type: object, additionalProperties: {type: string}}
        fx: {type: object, additionalProperties: {type: string}}
        deep_verify: {type: boolean}
        allow_drift: {type: boolean}
        allow_overlap: {type: boolean}
        dry_run: {type: boolean}
        meter_id: {type: string}
    Decimal: {type: string, description: "an exact decimal, e.g. 1399.56"}
    NullableString: {type: string, nullable: true}
    EvidenceReason:
      type: object
      additionalProperties: false
      required: [code, effect, model_id, token_type, account_id, detail, remedy, days, accounts, amount]
      properties:
        code: {type: string}
        effect: {type: string, enum: [inconclusive, blocks_negative, blocks_positive, blocks_model, blocks_account, note]}
        model_id: {type: string, nullable: true}
        token_type: {type: string, nullable: true}
        account_id: {type: string, nullable: true}
        detail: {type: string}
        remedy: {type: string, nullable: true}
        days: {type: array, nullable: true, items: {type: string}}
        accounts:
          type: array
          nullable: true
          items:
            type: object
            additionalProperties: false
            required: [account_id, metered]
            properties:
              account_id: {type: string}
              metered: {type: integer, format: int64}
        amount: {type: string, nullable: true}
    TokenTypeRow:
      type: object
      additionalProperties: false
      required: [token_type, metered, vendor, gap, gap_pct, tolerance, vendor_amount, gap_amount, list_amount]
      properties:
        token_type: {type: string, nullable: true}
        metered: {type: integer, format: int64}
        vendor: {type: integer, format: int64}
        gap: {type: integer, format: int64}
        gap_pct: {type: string, nullable: true}
        tolerance: {type: integer, format: int64}
        vendor_amount: {$ref: "#/components/schemas/Decimal"}
        gap_amount: {$ref: "#/components/schemas/Decimal"}
        list_amount: {type: string, nullable: true}
    Correction:
      type: object
      additionalProperties: false
      required: [event_id, account_id, meter_id, model_id, kind, correction_ref, quantity, unit, timestamp, dimensions]
      properties:
        event_id: {type: string}
        account_id: {type: string}
        meter_id: {type: string}
        model_id: {type: string, nullable: true}
        kind: {type: string, enum: [Correction]}
        correction_ref: {type: string}
        quantity: {type: integer, format: int64}
        unit: {type: string}
        timestamp: {type: string, format: date-time}
        dimensions: {type: object, additionalProperties: {type: string}}
    ReconciliationReport:
      type: object
      additionalProperties: false
      required: [id, vendor, account_id, invoice_scope, from, to, verdict, reasons, invoice, coverage, rate_card, rules, verify, models,
                 total, shape, implied_factor, unmetered_token_types, findings, price_steps, days, unattributed, unmapped, metered_out_of_scope,
                 corrections, held, meter_basis, rounding, applied, applied_event_ids, applied_at, reverted_at, run_by, created_at]
      properties:
        id: {type: string}
        vendor: {type: string}
        account_id: {type: string, nullable: true}
        invoice_scope: {type: string, enum: [as_given, account]}
        from: {type: string, format: date-time}
        to: {type: string, format: date-time}
        verdict: {type: string, enum: [conclusive, inconclusive]}
        reasons: {type: array, items: {$ref: "#/components/schemas/EvidenceReason"}}
        invoice:
          type: object
          additionalProperties: false
          required: [sha256, files, format, currency, lines, amount, unmapped_amount, amounts_by_currency, unconverted_currencies]
          properties:
            sha256: {type: string}
            files:
              type: array
              items:
                type: object
                additionalProperties: false
                required: [name, sha256, parser]
                properties: {name: {type: string}, sha256: {type: string}, parser: {type: string}}
            format: {type: string}
            currency: {type: string}
            lines: {type: integer}
            amount: {$ref: "#/components/schemas/Decimal"}
            unmapped_amount: {$ref: "#/components/schemas/Decimal"}
            amounts_by_currency: {type: object, additionalProperties: {type: string}}
            unconverted_currencies: {type: array, items: {type: string}}
        coverage:
          type: object
          additionalProperties: false
          required: [basis, covers, period_days, covered_days, uncovered, pages, incomplete, models]
          properties:
            basis: {type: string, enum: [declared, line_span, none]}
            covers:
              type: array
              items: {type: object, additionalProperties: false, required: [from, to], properties: {from: {type: string}, to: {type: string}}}
            period_days: {type: integer}
            covered_days: {type: integer}
            uncovered:
              type: array
              items: {type: object, additionalProperties: false, required: [from, to], properties: {from: {type: string}, to: {type: string}}}
            pages:
              type: array
              items:
                type: object
                additionalProperties: false
                required: [location, has_more, next_page]
                properties: {location: {type: string}, has_more: {type: boolean}, next_page: {type: string, nullable: true}}
            incomplete: {type: array, items: {type: string}}
            models:
              type: array
              items:
                type: object
                additionalProperties: false
                required: [model_id, token_type, days, first_day, last_day]
                properties:
                  model_id: {type: string}
                  token_type: {type: string, nullable: true}
                  days: {type: integer}
                  first_day: {type: string}
                  last_day: {type: string}
        rate_card:
          type: object
          additionalProperties: false
          required: [vendor, version, sha256]
          properties: {vendor: {type: string}, version: {type: string}, sha256: {type: string}}
        rules:
          type: object
          additionalProperties: false
          required: [chain, sha256]
          properties: {chain: {type: array, items: {type: string}}, sha256: {type: string}}
        verify:
          type: object
          additionalProperties: false
          required: [ok, mode, drift]
          properties: {ok: {type: boolean}, mode: {type: string, enum: [deep, incremental]}, drift: {type: integer, format: int64}}
        models:
          type: array
          items:
            type: object
            additionalProperties: false
            required: [model_id, metered, vendor, gap, gap_pct, tolerance, vendor_amount, gap_amount, token_types]
            properties:
              model_id: {type: string}
              metered: {type: integer, format: int64}
              vendor: {type: integer, format: int64}
              gap: {type: integer, format: int64}
              gap_pct: {type: string, nullable: true}
              tolerance: {type: integer, format: int64}
              vendor_amount: {$ref: "#/components/schemas/Decimal"}
              gap_amount: {$ref: "#/components/schemas/Decimal"}
              token_types: {type: array, items: {$ref: "#/components/schemas/TokenTypeRow"}}
        total:
          type: object
          additionalProperties: false
          required: [metered, vendor, gap, gap_amount]
          properties:
            metered: {type: integer, format: int64}
            vendor: {type: integer, format: int64}
            gap: {type: integer, format: int64}
            gap_amount: {$ref: "#/components/schemas/Decimal"}
        shape: {type: string, enum: [none, uniform, localized]}
        implied_factor: {type: string, nullable: true}
        unmetered_token_types: {type: array, items: {type: string}}
        findings:
          type: array
          items:
            type: object
            additionalProperties: false
            required: [model_id, token_type, account_id, quantity, amount, metered, vendor, class, rule, classifier, reason, blocked_by,
                       gap_since, gap_days, paired_with, pair_amount]
            properties:
              model_id: {type: string}
              token_type: {type: string, nullable: true}
              account_id: {type: string, nullable: true}
              quantity: {type: integer, format: int64}
              amount: {$ref: "#/components/schemas/Decimal"}
              metered: {type: integer, format: int64}
              vendor: {type: integer, format: int64}
              class: {type: string, enum: [metering_gap, pass_through, pricing_gap, unexplained, within_tolerance, boundary]}
              rule: {type: string}
              classifier: {type: string}
              reason: {type: string}
              blocked_by: {type: array, items: {type: string}}
              gap_since: {type: string, nullable: true}
              gap_days: {type: integer, nullable: true}
              paired_with: {type: string, nullable: true}
              pair_amount: {type: string, nullable: true}
        price_steps:
          type: array
          items:
            type: object
            additionalProperties: false
            required: [date, rates]
            properties:
              date: {type: string}
              rates:
                type: array
                items:
                  type: object
                  additionalProperties: false
                  required: [model_id, token_type, before_per_million, after_per_million]
                  properties:
                    model_id: {type: string}
                    token_type: {type: string, nullable: true}
                    before_per_million: {type: string}
                    after_per_million: {type: string}
        days:
          type: array
          items:
            type: object
            additionalProperties: false
            required: [day, model_id, token_type, metered, vendor, gap, vendor_amount, implied_per_million]
            properties:
              day: {type: string}
              model_id: {type: string}
              token_type: {type: string, nullable: true}
              metered: {type: integer, format: int64}
              vendor: {type: integer, format: int64, nullable: true}
              gap: {type: integer, format: int64, nullable: true}
              vendor_amount: {type: string, nullable: true}
              implied_per_million: {type: string, nullable: true}
        unattributed:
          type: array
          items:
            type: object
            additionalProperties: false
            required: [model_id, token_type, vendor, vendor_amount]
            properties:
              model_id: {type: string}
              token_type: {type: string, nullable: true}
              vendor: {type: integer, format: int64}
              vendor_amount: {$ref: "#/components/schemas/Decimal"}
        unmapped:
          type: array
          items:
            type: object
            additionalProperties: false
            required: [location, description, vendor_model, vendor_token_type, amount, currency, reason]
            properties:
              location: {type: string}
              description: {type: string, nullable: true}
              vendor_model: {type: string, nullable: true}
              vendor_token_type: {type: string, nullable: true}
              amount: {type: string, nullable: true}
              currency: {type: string}
              reason: {type: string}
        metered_out_of_scope:
          type: array
          items:
            type: object
            additionalProperties: false
            required: [model_id, meter_id, tokens, reason]
            properties:
              model_id: {type: string, nullable: true}
              meter_id: {type: string, nullable: true}
              tokens: {type: integer, format: int64}
              reason: {type: string}
        corrections: {type: array, items: {$ref: "#/components/schemas/Correction"}}
        meter_basis:
          type: array
          items:
            type: object
            additionalProperties: false
            required: [account_id, model_id, token_type, raw_model_ids, meter_id, vendors, metered]
            properties:
              account_id: {type: string}
              model_id: {type: string}
              token_type: {type: string, nullable: true}
              raw_model_ids: {type: array, items: {type: string}}
              meter_id: {type: string, nullable: true}
              vendors: {type: array, items: {type: string}}
              metered: {type: integer, format: int64}
        held:
          type: array
          items:
            type: object
            additionalProperties: false
            required: [reason, detail, correction]
            properties:
              reason: {type: string}
              detail: {type: string}
              correction: {$ref: "#/components/schemas/Correction"}
        rounding: {type: object, additionalProperties: {type: string}}
        applied: {type: boolean}
        applied_event_ids: {type: array, items: {type: string}}
        applied_at: {type: string, nullable: true}
        reverted_at: {type: string, nullable: true}
        run_by: {type: string}
        created_at: {type: string, format: date-time}
    JSONQuery:
      type: object
      required: [from, to]
      additionalProperties: false
      properties:
        account_id: {type: string}
        from: {type: string, format: date-time}
        to: {type: string, format: date-time}
        filters:
          type: array
          items:
            type: object
            required: [field, value]
            additionalProperties: false
            properties:
              field: {type: string}
              op: {type: string, enum: [eq, neq, in, not_in]}
              value:
                oneOf:
                  - {type: string}
                  - {type: array, items: {type: string}}
        group_by: {type: array, items: {type: string}}
        metrics: {type: array, items: {type: string, enum: [sum, count, min, max, avg]}}
        source: {type: string, enum: [auto, rollup, raw]}
"""#
}
