-- Sessions are ended by user when a password changes (issue #13).
CREATE INDEX sessions_by_user ON sessions (user_id);
