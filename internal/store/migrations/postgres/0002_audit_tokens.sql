-- 0002: the admin API's audit log and API tokens (secrets stored as SHA-256 hashes only).
CREATE TABLE audit_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT        NOT NULL DEFAULT '',
    role      TEXT        NOT NULL DEFAULT '',
    method    TEXT        NOT NULL,
    path      TEXT        NOT NULL,
    status    INTEGER     NOT NULL,
    objects   TEXT        NOT NULL DEFAULT '[]',
    revision  BIGINT      NOT NULL DEFAULT 0,
    message   TEXT        NOT NULL DEFAULT ''
);

CREATE TABLE api_tokens (
    name        TEXT        PRIMARY KEY,
    secret_hash TEXT        NOT NULL UNIQUE,
    role        TEXT        NOT NULL,
    gateways    TEXT        NOT NULL DEFAULT '[]',
    namespaces  TEXT        NOT NULL DEFAULT '[]',
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ
);
