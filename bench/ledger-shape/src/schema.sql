CREATE TABLE journal (
    position  INTEGER PRIMARY KEY,
    body      BLOB    NOT NULL,
    hash      BLOB    NOT NULL
);
CREATE TABLE checkpoints (
    entries  INTEGER PRIMARY KEY,
    bytes    BLOB    NOT NULL
);
CREATE TABLE identity (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    ledger_id       BLOB    NOT NULL,
    vendor          TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    journal_format  INTEGER NOT NULL
);
CREATE TABLE licenses (
    serial      TEXT    NOT NULL,
    sequence    INTEGER NOT NULL,
    license_id  BLOB    NOT NULL UNIQUE,
    action      TEXT    NOT NULL,
    entry       INTEGER NOT NULL,
    operator    TEXT    NOT NULL,
    issued_at   INTEGER NOT NULL,
    customer    TEXT    NOT NULL,
    pbx_name    TEXT    NOT NULL,
    platform    TEXT    NOT NULL,
    lease_end   INTEGER NOT NULL,
    term_end    INTEGER,
    idem_key    TEXT    UNIQUE,
    request_key BLOB,
    PRIMARY KEY (serial, sequence)
);
CREATE TABLE hw_serials (
    hw_serial  TEXT    PRIMARY KEY,
    serial     TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    entry      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX hw_serials_serial ON hw_serials (serial);
CREATE TABLE serial_counter (
    year   INTEGER PRIMARY KEY,
    last   INTEGER NOT NULL,
    entry  INTEGER NOT NULL
);
CREATE TABLE schedules (
    serial        TEXT    PRIMARY KEY,
    stop_at       INTEGER NOT NULL,
    delete_at     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    cancelled_at  INTEGER,
    entry         INTEGER NOT NULL
);
CREATE TABLE events (
    entry     INTEGER PRIMARY KEY,
    serial    TEXT    NOT NULL,
    sequence  INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    operator  TEXT    NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX events_serial ON events (serial, sequence);
CREATE TABLE replaced_bindings (
    serial       TEXT    NOT NULL,
    sequence     INTEGER NOT NULL,
    replaced_by  INTEGER NOT NULL,
    device_keys  TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    entry        INTEGER NOT NULL,
    PRIMARY KEY (serial, sequence)
);
CREATE TABLE IF NOT EXISTS pbxs (
    serial         TEXT    PRIMARY KEY,
    customer       TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    model          TEXT    NOT NULL,
    platform       TEXT    NOT NULL,
    cycle          TEXT    NOT NULL,
    profiles       TEXT    NOT NULL,
    storage        INTEGER NOT NULL,
    policy         TEXT    NOT NULL,
    policy_values  TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    entry          INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pbx_changes (
    entry     INTEGER PRIMARY KEY,
    serial    TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    operator  TEXT    NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pbx_changes_serial ON pbx_changes (serial);
CREATE TABLE IF NOT EXISTS charges (
    entry         INTEGER NOT NULL,
    line          INTEGER NOT NULL,
    serial        TEXT    NOT NULL,
    sequence      INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    item          TEXT    NOT NULL,
    quantity      INTEGER NOT NULL,
    cycle         TEXT    NOT NULL,
    period_start  INTEGER NOT NULL,
    period_end    INTEGER,
    days          INTEGER NOT NULL,
    period_days   INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    PRIMARY KEY (entry, line)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS charges_at ON charges (at);
