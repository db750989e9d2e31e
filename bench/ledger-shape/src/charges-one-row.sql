DROP INDEX charges_at;
DROP TABLE charges;
CREATE TABLE charges (
    entry     INTEGER PRIMARY KEY,
    serial    TEXT    NOT NULL,
    sequence  INTEGER NOT NULL,
    lines     BLOB    NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX charges_at ON charges (at);
