-- 0001: objects, their revision history and the store-wide revision counter.
CREATE TABLE store_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
INSERT INTO store_revision (id, revision) VALUES (1, 0);

CREATE TABLE objects (
    kind       TEXT        NOT NULL,
    namespace  TEXT        NOT NULL DEFAULT '',
    name       TEXT        NOT NULL,
    revision   BIGINT      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    data       JSONB       NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);

CREATE TABLE revisions (
    revision  BIGINT      PRIMARY KEY,
    kind      TEXT        NOT NULL,
    namespace TEXT        NOT NULL,
    name      TEXT        NOT NULL,
    operation TEXT        NOT NULL,
    actor     TEXT        NOT NULL DEFAULT '',
    at        TIMESTAMPTZ NOT NULL,
    data      JSONB
);
CREATE INDEX revisions_by_key ON revisions (kind, namespace, name, revision);
