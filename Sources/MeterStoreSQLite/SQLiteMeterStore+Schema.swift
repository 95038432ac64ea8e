import GRDB

extension SQLiteMeterStore {
    /// The schema's history. **A migration is never edited once it has landed; add a new one.**
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1.metering") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meter (
                        meter_id TEXT PRIMARY KEY,
                        unit TEXT,
                        rollup_dimensions TEXT,  -- JSON array of kept dimension names; NULL keeps all
                        created_at INTEGER NOT NULL
                    );
                    CREATE TABLE segment (
                        id INTEGER PRIMARY KEY,
                        account_id TEXT NOT NULL,
                        opened_at INTEGER NOT NULL,
                        sealed_at INTEGER,
                        event_count INTEGER NOT NULL DEFAULT 0,
                        sum INTEGER NOT NULL DEFAULT 0,
                        first_ts INTEGER,
                        last_ts INTEGER,
                        sha256 TEXT,
                        prev_sha256 TEXT,
                        verified_at INTEGER
                    );
                    CREATE INDEX segment_account ON segment(account_id, id);
                    CREATE UNIQUE INDEX segment_one_open ON segment(account_id) WHERE sealed_at IS NULL;
                    CREATE TRIGGER segment_sealed_is_final BEFORE UPDATE ON segment
                    WHEN OLD.sealed_at IS NOT NULL AND (
                        NEW.sealed_at IS NOT OLD.sealed_at OR NEW.sha256 IS NOT OLD.sha256
                        OR NEW.prev_sha256 IS NOT OLD.prev_sha256 OR NEW.event_count IS NOT OLD.event_count
                        OR NEW.sum IS NOT OLD.sum OR NEW.first_ts IS NOT OLD.first_ts OR NEW.last_ts IS NOT OLD.last_ts
                        OR NEW.account_id IS NOT OLD.account_id)
                    BEGIN SELECT RAISE(ABORT, 'a sealed segment never changes'); END;
                    CREATE TRIGGER segment_no_delete BEFORE DELETE ON segment
                    BEGIN SELECT RAISE(ABORT, 'segments are never deleted'); END;

                    CREATE TABLE event (
                        seq INTEGER PRIMARY KEY,
                        account_id TEXT NOT NULL,
                        event_id TEXT NOT NULL,
                        meter_id TEXT NOT NULL,
                        model_id TEXT,
                        kind TEXT NOT NULL CHECK (kind IN ('Usage', 'Correction')),
                        correction_ref TEXT,
                        quantity INTEGER NOT NULL,
                        unit TEXT,
                        ts INTEGER NOT NULL,           -- microseconds since the epoch, UTC
                        dimensions TEXT NOT NULL,      -- canonical JSON object
                        segment_id INTEGER NOT NULL REFERENCES segment(id),
                        post_close INTEGER NOT NULL DEFAULT 0,
                        ingested_at INTEGER NOT NULL,
                        UNIQUE (account_id, event_id)
                    );
                    CREATE INDEX event_account_ts ON event(account_id, ts);
                    CREATE INDEX event_segment ON event(segment_id);
                    CREATE TRIGGER event_no_update BEFORE UPDATE ON event
                    BEGIN SELECT RAISE(ABORT, 'events are immutable: record a Correction instead'); END;
                    CREATE TRIGGER event_no_delete BEFORE DELETE ON event
                    BEGIN SELECT RAISE(ABORT, 'events are immutable: record a Correction instead'); END;

                    CREATE TABLE rollup_key (
                        id INTEGER PRIMARY KEY,
                        account_id TEXT NOT NULL,
                        meter_id TEXT NOT NULL,
                        model_id TEXT NOT NULL,   -- '' for none
                        kind TEXT NOT NULL,
                        unit TEXT NOT NULL,       -- '' for none
                        dimensions TEXT NOT NULL, -- canonical JSON of the kept dimensions
                        UNIQUE (account_id, meter_id, model_id, kind, unit, dimensions)
                    );
                    CREATE TABLE rollup_hour (
                        key_id INTEGER NOT NULL,
                        hour INTEGER NOT NULL,    -- hours since the epoch, UTC
                        sum INTEGER NOT NULL CHECK (typeof(sum) = 'integer'),
                        count INTEGER NOT NULL,
                        min INTEGER NOT NULL,
                        max INTEGER NOT NULL,
                        PRIMARY KEY (key_id, hour)
                    ) WITHOUT ROWID;
                    CREATE TABLE segment_stat (
                        segment_id INTEGER NOT NULL,
                        key_id INTEGER NOT NULL,
                        hour INTEGER NOT NULL,
                        sum INTEGER NOT NULL,
                        count INTEGER NOT NULL,
                        PRIMARY KEY (segment_id, key_id, hour)
                    ) WITHOUT ROWID;
                    CREATE TABLE account_dimension (
                        account_id TEXT NOT NULL,
                        name TEXT NOT NULL,
                        PRIMARY KEY (account_id, name)
                    ) WITHOUT ROWID;
                    CREATE TABLE period (
                        account_id TEXT NOT NULL,
                        period TEXT NOT NULL,
                        closed_at INTEGER NOT NULL,
                        PRIMARY KEY (account_id, period)
                    ) WITHOUT ROWID;
                    CREATE TRIGGER period_no_reopen BEFORE DELETE ON period
                    BEGIN SELECT RAISE(ABORT, 'a closed period cannot be reopened'); END;
                    CREATE TRIGGER period_no_update BEFORE UPDATE ON period
                    BEGIN SELECT RAISE(ABORT, 'a closed period cannot be changed'); END;
                    """)
        }
        m.registerMigration("v2.api-keys") { db in
            try db.execute(
                sql: """
                    CREATE TABLE api_key (
                        key_id TEXT PRIMARY KEY,
                        secret_sha256 TEXT NOT NULL UNIQUE,  -- only the hash of the secret is kept
                        account_id TEXT,                     -- NULL: an admin key over every account
                        role TEXT NOT NULL CHECK (role IN ('reader', 'writer', 'admin')),
                        created_at INTEGER NOT NULL,
                        revoked_at INTEGER
                    );
                    """)
        }
        m.registerMigration("v3.reconciliations") { db in
            try db.execute(
                sql: """
                    CREATE TABLE reconciliation (
                        id TEXT PRIMARY KEY,
                        vendor TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        run_by TEXT NOT NULL,
                        report TEXT NOT NULL,      -- the report JSON (inputs' SHA-256, rate card, rules, results)
                        applied_at INTEGER
                    );
                    CREATE TRIGGER reconciliation_no_delete BEFORE DELETE ON reconciliation
                    BEGIN SELECT RAISE(ABORT, 'reconciliation records are kept'); END;
                    """)
        }
        m.registerMigration("v4.rollup-day") { db in
            // Daily rollups built from the hourly ones: a month's read touches 31 rows per key, not 744.
            try db.execute(
                sql: """
                    CREATE TABLE rollup_day (
                        key_id INTEGER NOT NULL,
                        day INTEGER NOT NULL,     -- days since the epoch, UTC
                        sum INTEGER NOT NULL CHECK (typeof(sum) = 'integer'),
                        count INTEGER NOT NULL,
                        min INTEGER NOT NULL,
                        max INTEGER NOT NULL,
                        PRIMARY KEY (key_id, day)
                    ) WITHOUT ROWID;
                    INSERT INTO rollup_day (key_id, day, sum, count, min, max)
                        SELECT key_id, hour / 24, SUM(sum), SUM(count), MIN(min), MAX(max) FROM rollup_hour GROUP BY key_id, hour / 24;
                    """)
        }
        m.registerMigration("v5.segment-clustered-events") { db in
            // Events of a new segment get seq = seq_base + their ordinal in it (seq_base = id << 32),
            // so a segment's events are one rowid range, already in ingest order: sealing and verify
            // read them without a segment index, and ingest maintains one b-tree fewer per event.
            // Events stored before this migration keep their seqs (< 2^32) and a partial index.
            try db.execute(
                sql: """
                    ALTER TABLE segment ADD COLUMN seq_base INTEGER;
                    DROP INDEX event_segment;
                    CREATE INDEX event_segment_legacy ON event(segment_id) WHERE seq < 4294967296;
                    """)
        }
        m.registerMigration("v6.segment-scrub") { db in
            // A segment counts as verified only once its stored events were re-hashed independently
            // (by verify or the scrub), never on the hash the writer kept while sealing: every earlier
            // verified_at is forgotten. running_hash is the multiset hash of an open segment's events,
            // kept with each committed batch, so a consistent edit of an open event is caught too.
            try db.execute(
                sql: """
                    ALTER TABLE segment ADD COLUMN running_hash TEXT;
                    ALTER TABLE segment ADD COLUMN corrupt_reason TEXT;
                    UPDATE segment SET verified_at = NULL;
                    CREATE INDEX segment_scrub ON segment(verified_at) WHERE sealed_at IS NOT NULL;
                    """)
        }
        m.registerMigration("v7.time-by-segment") { db in
            // The segment table is the time index: a segment's events are one seq range (v5) and its
            // first_ts/last_ts bound their times, so a raw time-range read walks the segments that
            // overlap the range. Ingest no longer maintains an (account_id, ts) b-tree per event.
            try db.execute(sql: "DROP INDEX event_account_ts")
        }
        m.registerMigration("v8.post-close-hashed") { db in
            // Segments sealed from now on mark post-close events in their hash (rule 2, set by the
            // seal that hashes them), so a file edit of `post_close` breaks the chain; those sealed
            // before keep rule 1, and so does a segment an older binary still writing seals.
            try db.execute(
                sql: """
                    ALTER TABLE segment ADD COLUMN hash_rule INTEGER NOT NULL DEFAULT 1;
                    -- How many post-close events an open segment holds, kept with each batch beside
                    -- its running hash (which covers the events alone, as every version keeps it):
                    -- fewer on a re-read means a flag was cleared. NULL where not known.
                    ALTER TABLE segment ADD COLUMN post_close_count INTEGER;
                    UPDATE segment SET post_close_count = (
                        SELECT count(*) FROM event e
                        WHERE e.seq >= segment.seq_base AND e.seq < segment.seq_base + 4294967296 AND e.segment_id = segment.id AND e.post_close = 1
                    ) WHERE sealed_at IS NULL AND seq_base IS NOT NULL;
                    UPDATE segment SET post_close_count = (
                        SELECT count(*) FROM event e WHERE e.segment_id = segment.id AND e.seq < 4294967296 AND e.post_close = 1
                    ) WHERE sealed_at IS NULL AND seq_base IS NULL;
                    CREATE TRIGGER segment_sealed_rule_is_final BEFORE UPDATE OF hash_rule ON segment
                    WHEN OLD.sealed_at IS NOT NULL AND NEW.hash_rule IS NOT OLD.hash_rule
                    BEGIN SELECT RAISE(ABORT, 'a sealed segment never changes'); END;
                    """)
        }
        m.registerMigration("v9.reconciliation-account") { db in
            // Whose run each stored report is, without reading the report: a page listing one
            // account's runs read every run's text first (megabytes each: tester S2).
            try db.execute(sql: "CREATE INDEX reconciliation_account ON reconciliation (json_extract(report, '$.account_id'), created_at)")
        }
        m.registerMigration("v10.reconciliation-summary") { db in
            // What a list of runs shows of each, written beside its report: the `/ui/` index read
            // 200 reports whole (tester S2). A table of its own: a column after the report in the
            // same row is reached through the report's overflow pages (megabytes a run, review
            // 58). A run recorded before has none: read from its report. The newest runs are
            // found through (created_at, id) alone, reading no run's row. A report replaced without
            // its summary (an older usagebox still serving the file) drops the summary, so the run
            // is read from its report rather than listed as it was.
            try db.execute(
                sql: """
                    CREATE TABLE reconciliation_summary (
                        id TEXT PRIMARY KEY,       -- the run's id in reconciliation
                        summary TEXT NOT NULL      -- its summary JSON (ReconCore's ReconciliationSummary)
                    ) WITHOUT ROWID;
                    CREATE INDEX reconciliation_recent ON reconciliation (created_at, id);
                    CREATE TRIGGER reconciliation_summary_outdated AFTER UPDATE OF report ON reconciliation
                    BEGIN DELETE FROM reconciliation_summary WHERE id = NEW.id; END;
                    """)
        }
        return m
    }

    /// Where a segment's own seq range starts (`v5.segment-clustered-events`).
    static func seqBase(segment id: Int64) -> Int64 { id << 32 }

    /// Seqs below this belong to events stored before segments had their own range.
    static let legacySeqLimit: Int64 = 1 << 32
}
