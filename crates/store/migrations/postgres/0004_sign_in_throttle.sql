-- Sign-in throttling (issue #13), shared by every instance: attempts per key (a SHA-256 of
-- "pair:<user or email>|<address>", "email:<user or email>" or "device:<device>", never the
-- email itself), and the browsers that signed a user in before (only a SHA-256 of the device
-- cookie), which the per-email ceiling does not slow down.
CREATE TABLE sign_in_failures (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    last_at      BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);
CREATE INDEX sign_in_failures_by_age ON sign_in_failures (last_at);

CREATE TABLE known_devices (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX known_devices_by_user ON known_devices (user_id);
