-- Sessions a person can list and end (issue #13): a public handle to name one by (the id's
-- hash stays private), and where and with which browser it was opened.
ALTER TABLE sessions ADD COLUMN handle TEXT;
ALTER TABLE sessions ADD COLUMN remote_addr TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
UPDATE sessions SET handle = 'ses_' || lower(hex(randomblob(8))) WHERE handle IS NULL;
CREATE UNIQUE INDEX sessions_by_handle ON sessions (handle);
