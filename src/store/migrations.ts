/**
 * Numbered schema migrations; the database's `user_version` says how many have run.
 * Never edit a released step: add the next one. docs/database.md documents the resulting schema (test/docs-database.test.ts keeps it so).
 */
/**
 * The views over field rows: created by migration 3 and again, unchanged, by migration 4 once it
 * has rebuilt `fields` as a view (the text is interpolated as it is, so both produce the same schema).
 */
const FIELD_VIEWS = `CREATE VIEW fields_by_category AS
    SELECT s.name AS session, e.name AS event, f.category, COUNT(*) AS fields
      FROM fields f JOIN events e ON e.id = f.event_id JOIN sessions s ON s.id = e.session_id
     GROUP BY s.name, e.name, f.category;

  CREATE VIEW content_findings AS
    SELECT s.name AS session, e.exchange_id, e.id AS event_id, e.name AS event, f.path, f.value, f.rule, f.reasons,
           f.pii_kind, f.customer_content
      FROM fields f JOIN events e ON e.id = f.event_id JOIN sessions s ON s.id = e.session_id
     WHERE f.category = 'content';`;

export const MIGRATIONS: readonly string[] = [
  /* 1: capture spine */ `
  CREATE TABLE sessions (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    started_at     INTEGER NOT NULL,          -- ms since the Unix epoch
    ended_at       INTEGER,
    tool_version   TEXT NOT NULL,
    ca_fingerprint TEXT,                      -- SHA-256 of the CA that signed the leaves
    options_json   TEXT NOT NULL DEFAULT '{}' -- proxy options in force (no secrets)
  );

  -- Bodies, content-addressed: the bytes exactly as received.
  CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size   INTEGER NOT NULL,
    data   BLOB NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE connections (
    id                TEXT PRIMARY KEY,
    session_id        INTEGER NOT NULL REFERENCES sessions(id),
    client_address    TEXT NOT NULL,
    client_port       INTEGER NOT NULL,
    host              TEXT NOT NULL,
    port              INTEGER NOT NULL,
    sni               TEXT,
    outcome           TEXT NOT NULL,          -- intercepted | tunnelled | plain-http | client-rejected-certificate | tls-failed | upstream-failed | denied
    upstream          TEXT,                   -- where the bytes went when --map-host/--upstream changed it
    bytes_from_client INTEGER NOT NULL DEFAULT 0,
    bytes_to_client   INTEGER NOT NULL DEFAULT 0,
    exchanges         INTEGER NOT NULL DEFAULT 0,
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    error             TEXT
  );
  CREATE INDEX connections_session_host ON connections(session_id, host);

  CREATE TABLE exchanges (
    id                      TEXT PRIMARY KEY,
    session_id              INTEGER NOT NULL REFERENCES sessions(id),
    seq                     INTEGER NOT NULL,  -- order of capture within the session (the chain order)
    connection_id           TEXT,
    scheme                  TEXT NOT NULL,
    method                  TEXT NOT NULL,
    host                    TEXT NOT NULL,
    port                    INTEGER NOT NULL,
    path                    TEXT NOT NULL,
    http_version            TEXT NOT NULL,
    request_headers         TEXT NOT NULL,     -- JSON [[name, value], ...] in wire order and case
    request_body_sha256     TEXT NOT NULL REFERENCES blobs(sha256),
    request_body_size       INTEGER NOT NULL,  -- bytes the client sent (may exceed the stored blob)
    request_body_truncated  INTEGER NOT NULL DEFAULT 0,
    request_complete        INTEGER NOT NULL,
    mode                    TEXT NOT NULL,     -- forward | sinkhole | block
    endpoint_id             TEXT,              -- classifiers/endpoints.yaml entry
    upstream                TEXT,
    response_status         INTEGER,
    response_headers        TEXT,              -- JSON pairs
    response_body_sha256    TEXT REFERENCES blobs(sha256),
    response_body_size      INTEGER,
    response_body_truncated INTEGER NOT NULL DEFAULT 0,
    response_trailers       TEXT,
    response_source         TEXT,              -- upstream | exhaust
    outcome                 TEXT NOT NULL,     -- ok | sinkholed | blocked | upstream-* | client-aborted
    error_code              TEXT,
    error_message           TEXT,
    started_at              INTEGER NOT NULL,
    request_ended_at        INTEGER,
    responded_at            INTEGER,
    ended_at                INTEGER,
    prev_hash               TEXT NOT NULL,
    hash                    TEXT NOT NULL,
    UNIQUE (session_id, seq)
  );
  CREATE INDEX exchanges_session_host ON exchanges(session_id, host);

  CREATE VIEW endpoints_contacted AS
    SELECT s.name AS session, c.host, c.port, c.outcome,
           COUNT(*) AS connections, SUM(c.bytes_from_client) AS bytes_from_client,
           SUM(c.bytes_to_client) AS bytes_to_client, SUM(c.exchanges) AS exchanges
      FROM connections c JOIN sessions s ON s.id = c.session_id
     GROUP BY s.name, c.host, c.port, c.outcome;
  `,
  /* 2: decoded events and fields */ `
  ALTER TABLE exchanges ADD COLUMN decoder TEXT;           -- decoder@version that produced the events
  ALTER TABLE exchanges ADD COLUMN content_encoding TEXT;  -- encodings undone, e.g. "deflate(raw)"
  ALTER TABLE exchanges ADD COLUMN upload_facts TEXT;      -- JSON: tenants, SDK version, upload time
  ALTER TABLE exchanges ADD COLUMN decoded_at INTEGER;

  CREATE TABLE events (
    id          INTEGER PRIMARY KEY,           -- what \`exhaust show\` takes
    exchange_id TEXT NOT NULL REFERENCES exchanges(id),
    session_id  INTEGER NOT NULL REFERENCES sessions(id),
    idx         INTEGER NOT NULL,              -- position in the upload
    format      TEXT NOT NULL,                 -- decoder id
    name        TEXT NOT NULL,
    time        TEXT,
    ikey        TEXT,
    byte_start  INTEGER,
    byte_end    INTEGER,
    field_count INTEGER NOT NULL,
    UNIQUE (exchange_id, idx)
  );
  CREATE INDEX events_session_name ON events(session_id, name);
  CREATE INDEX events_name ON events(name);

  CREATE TABLE fields (
    event_id         INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    idx              INTEGER NOT NULL,
    part             TEXT NOT NULL,            -- envelope | A | B | C | body
    path             TEXT NOT NULL,
    value            TEXT,                     -- strings as they are; other types as JSON
    type             TEXT NOT NULL,
    pii_kind         INTEGER,                  -- declared on the wire (PIIKind)
    customer_content INTEGER,                  -- declared on the wire
    wire_type        INTEGER,
    scrub_type       INTEGER,
    PRIMARY KEY (event_id, idx)
  ) WITHOUT ROWID;
  CREATE INDEX fields_path ON fields(path);

  CREATE TABLE decode_findings (
    exchange_id TEXT NOT NULL REFERENCES exchanges(id),
    idx         INTEGER NOT NULL,
    code        TEXT NOT NULL,                 -- dotted, e.g. bond.truncated
    severity    TEXT NOT NULL,
    message     TEXT NOT NULL,
    offset      INTEGER,
    length      INTEGER,
    event_index INTEGER,
    PRIMARY KEY (exchange_id, idx)
  ) WITHOUT ROWID;
  `,
  /* 3: classification */ `
  ALTER TABLE exchanges ADD COLUMN classified_with TEXT;   -- fingerprint of the rule packs used

  ALTER TABLE events ADD COLUMN ms_group TEXT;             -- required | optional | essential | connected-experience | unknown
  ALTER TABLE events ADD COLUMN group_rule TEXT;
  ALTER TABLE events ADD COLUMN category TEXT;             -- DPIA category of the event as a whole
  ALTER TABLE events ADD COLUMN catalog_category TEXT;     -- Microsoft's category (office-events.tsv)
  ALTER TABLE events ADD COLUMN subtype TEXT;
  CREATE INDEX events_session_category ON events(session_id, category);
  CREATE INDEX events_session_group ON events(session_id, ms_group);

  ALTER TABLE fields ADD COLUMN category TEXT;             -- content | functional | diagnostic
  ALTER TABLE fields ADD COLUMN personal TEXT;             -- direct-identifier | pseudonymous-id | network-identifier | none
  ALTER TABLE fields ADD COLUMN rule TEXT;                 -- the winning rule id
  ALTER TABLE fields ADD COLUMN reasons TEXT;              -- JSON array of every rule that fired
  ALTER TABLE fields ADD COLUMN confidence REAL;
  -- Content is rare: a partial index finds it without making every field insert pay for an index.
  CREATE INDEX fields_content ON fields(event_id) WHERE category = 'content';

  CREATE TABLE classification_findings (
    event_id   INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    code       TEXT NOT NULL,                  -- declared.untagged-pii, content.in-diagnostic, ...
    message    TEXT NOT NULL,
    field_path TEXT NOT NULL,
    rule       TEXT,
    PRIMARY KEY (event_id, idx)
  ) WITHOUT ROWID;

  -- Request headers, beacon query parameters and the client address of each upload, classified.
  CREATE TABLE request_items (
    exchange_id TEXT NOT NULL REFERENCES exchanges(id),
    idx         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    location    TEXT NOT NULL,                 -- header | query | connection
    category    TEXT NOT NULL,
    personal    TEXT NOT NULL,
    secret      INTEGER NOT NULL,
    rule        TEXT NOT NULL,
    reasons     TEXT NOT NULL,
    PRIMARY KEY (exchange_id, idx)
  ) WITHOUT ROWID;

  ${FIELD_VIEWS}
  `,
  /* 4: compact field rows */ `
  -- Fields are most of the database (about 40 per event), and almost everything about a field
  -- repeats: its path, type and wire declarations, and its classification. Each distinct one is
  -- stored once; a field row is its event, position, value and two ids. The view \`fields\` keeps
  -- the readable shape.
  CREATE TABLE field_paths (                   -- a field as the wire declares it
    id               INTEGER PRIMARY KEY,
    part             TEXT NOT NULL,            -- envelope | A | B | C | body
    path             TEXT NOT NULL,
    type             TEXT NOT NULL,
    pii_kind         INTEGER,                  -- declared on the wire (PIIKind)
    customer_content INTEGER,                  -- declared on the wire
    wire_type        INTEGER,
    scrub_type       INTEGER
  );
  CREATE UNIQUE INDEX field_paths_key ON field_paths(path, part, type, ifnull(pii_kind, -1),
    ifnull(customer_content, -1), ifnull(wire_type, -1), ifnull(scrub_type, -1));
  CREATE TABLE field_classes (                 -- a classification outcome
    id         INTEGER PRIMARY KEY,
    category   TEXT NOT NULL,                  -- content | functional | diagnostic
    personal   TEXT NOT NULL,                  -- direct-identifier | pseudonymous-id | network-identifier | none
    rule       TEXT NOT NULL,                  -- the winning rule id
    reasons    TEXT,                           -- JSON array of every rule that fired; NULL when only the winning rule did
    confidence REAL NOT NULL
  );
  CREATE UNIQUE INDEX field_classes_key ON field_classes(rule, category, personal, confidence, ifnull(reasons, ''));
  -- No foreign keys: each check would cost a lookup per row. EventStore deletes an event's field
  -- rows with the event.
  CREATE TABLE field_values (
    event_id INTEGER NOT NULL,                 -- events.id
    idx      INTEGER NOT NULL,                 -- position in the event
    path_id  INTEGER NOT NULL,                 -- field_paths.id
    value    TEXT,                             -- strings as they are; other types as JSON
    class_id INTEGER,                          -- field_classes.id; NULL = not classified
    category TEXT,                             -- the class's category, here so an index can find content
    PRIMARY KEY (event_id, idx)
  ) WITHOUT ROWID;

  INSERT OR IGNORE INTO field_paths (part, path, type, pii_kind, customer_content, wire_type, scrub_type)
    SELECT DISTINCT part, path, type, pii_kind, customer_content, wire_type, scrub_type FROM fields;
  INSERT OR IGNORE INTO field_classes (category, personal, rule, reasons, confidence)
    SELECT DISTINCT category, personal, rule, reasons, ifnull(confidence, 1) FROM fields
     WHERE category IS NOT NULL AND personal IS NOT NULL AND rule IS NOT NULL;
  INSERT INTO field_values
    SELECT f.event_id, f.idx, p.id, f.value, c.id, f.category
      FROM fields f
      JOIN field_paths p ON p.path = f.path AND p.part = f.part AND p.type = f.type AND p.pii_kind IS f.pii_kind
           AND p.customer_content IS f.customer_content AND p.wire_type IS f.wire_type AND p.scrub_type IS f.scrub_type
      LEFT JOIN field_classes c ON c.rule = f.rule AND c.category = f.category AND c.personal = f.personal
           AND c.confidence = ifnull(f.confidence, 1) AND c.reasons IS f.reasons;

  DROP VIEW content_findings;
  DROP VIEW fields_by_category;
  DROP TABLE fields;

  -- Content is rare: a partial index finds it without making every field insert pay for an index.
  CREATE INDEX field_values_content ON field_values(event_id) WHERE category = 'content';

  CREATE VIEW fields AS
    SELECT v.event_id, v.idx, p.part, p.path, v.value, p.type, p.pii_kind, p.customer_content, p.wire_type, p.scrub_type,
           v.category, c.personal, c.rule, c.reasons, c.confidence
      FROM field_values v JOIN field_paths p ON p.id = v.path_id LEFT JOIN field_classes c ON c.id = v.class_id;

  ${FIELD_VIEWS}

  -- Per-event counts, so event lists filter on content and personal data without reading fields.
  ALTER TABLE events ADD COLUMN content_fields INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE events ADD COLUMN personal_fields INTEGER NOT NULL DEFAULT 0;  -- fields whose personal kind is not none
  UPDATE events SET
    content_fields = (SELECT COUNT(*) FROM fields f WHERE f.event_id = events.id AND f.category = 'content'),
    personal_fields = (SELECT COUNT(*) FROM fields f WHERE f.event_id = events.id AND f.personal <> 'none');
  `,
  /* 5: verification */ `
  -- One row per \`exhaust verify\` run; the whole report as JSON (src/verify/types.ts VerdictReport).
  CREATE TABLE verdicts (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES sessions(id),
    profile     TEXT NOT NULL,                 -- profile name
    status      TEXT NOT NULL,                 -- pass | fail | warn | inconclusive
    created_at  INTEGER NOT NULL,              -- ms since the Unix epoch
    report_json TEXT NOT NULL
  );
  CREATE INDEX verdicts_session ON verdicts(session_id, created_at);

  -- Tokens from \`exhaust canary new\`, searched for by verification.
  CREATE TABLE canaries (
    token      TEXT PRIMARY KEY,
    label      TEXT,
    created_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  /* 6: inspection */ `
  -- Event lists page through a session in id order: (session_id, rowid) serves that without a sort.
  -- One entry per event (not per field), so inserts barely notice it.
  CREATE INDEX events_session ON events(session_id);
  `,
  /* 7: session owners */ `
  -- The proxy capturing a session: one at a time (EXH_SESSION_BUSY). Keyed by session name, so a
  -- proxy claims its session before the session row is made. A claim lapses when its pid is gone
  -- (same host) or its heartbeat is old; a clean stop deletes it.
  CREATE TABLE session_owners (
    session      TEXT PRIMARY KEY,              -- sessions.name
    pid          INTEGER NOT NULL,
    host         TEXT NOT NULL,                 -- os.hostname() of the owner
    token        TEXT NOT NULL,                 -- random, per proxy run
    started_at   INTEGER NOT NULL,              -- ms since the Unix epoch
    heartbeat_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  /* 8: incomplete sessions */ `
  -- Why a session is known not to hold everything it should: an import that has not finished (still
  -- running, killed or failed). NULL for a whole session. \`exhaust sessions\` shows it and
  -- \`exhaust verify\` answers INCONCLUSIVE for it.
  ALTER TABLE sessions ADD COLUMN incomplete TEXT;
  `,
  /* 9: evidence checkpoints */ `
  -- Signed chain checkpoints: session, seq and chain head at a moment, signed by the capture CA's key
  -- (src/capture/checkpoint.ts defines the signed bytes). Written when a capture stops and by
  -- \`exhaust sessions --head\`; exported in bundles (checkpoints.jsonl).
  CREATE TABLE checkpoints (
    id             INTEGER PRIMARY KEY,
    session_id     INTEGER NOT NULL REFERENCES sessions(id),
    seq            INTEGER NOT NULL,           -- last exchange's seq (0: no exchanges yet)
    head           TEXT NOT NULL,              -- its hash (64 zeros: no exchanges yet)
    created_at     TEXT NOT NULL,              -- ISO 8601 UTC, as signed
    ca_fingerprint TEXT NOT NULL,              -- SHA-256 of the CA whose key signed
    signature      TEXT NOT NULL,              -- base64 RSA-SHA256 over the canonical bytes
    tsa            TEXT                        -- base64 RFC 3161 TimeStampResp, when one was obtained
  );
  CREATE INDEX checkpoints_session ON checkpoints(session_id, id);
  `,
  /* 10: fleet labels */ `
  -- Which lab and machine a session was captured for (\`exhaust proxy --lab --machine\`): the
  -- Parquet export partitions by them (docs/fleet.md). NULL when not given.
  ALTER TABLE sessions ADD COLUMN lab TEXT;
  ALTER TABLE sessions ADD COLUMN machine TEXT;
  `,
  /* 11: bodies in a rowid table */ `
  -- A WITHOUT ROWID table keeps each row in its key's B-tree, so finding a body by its hash compared
  -- the hash against whole neighbouring rows, bodies and overflow pages included: every lookup and
  -- every INSERT OR IGNORE read several other bodies in full (about 8 page reads per page of the body
  -- loaded). In a rowid table the hash is found in its own small index and the body read once.
  -- Foreign keys are off while migrations run (database.ts): exchanges refer to blobs by name, and
  -- the rows are the same before and after. Each body is moved as its old row is deleted (a trigger
  -- for this step only), so the pages it frees take the next bodies: the file does not grow by the
  -- size of the bodies, though the transaction's WAL holds them all until it is checkpointed.
  CREATE TABLE blobs_rowid (
    sha256 TEXT PRIMARY KEY,
    size   INTEGER NOT NULL,
    data   BLOB NOT NULL
  );
  CREATE TEMP TRIGGER move_blob_to_rowid_table BEFORE DELETE ON main.blobs BEGIN
    INSERT INTO main.blobs_rowid (sha256, size, data) VALUES (old.sha256, old.size, old.data);
  END;
  DELETE FROM main.blobs;
  DROP TRIGGER temp.move_blob_to_rowid_table;
  DROP TABLE blobs;
  ALTER TABLE blobs_rowid RENAME TO blobs;
  `,
];
