-- A session opened through the account's single sign-on (issue #13): the provider answers for
-- the second factor, so such a session is not sent to set up Lightbridge's own.
ALTER TABLE sessions ADD COLUMN via_sso BIGINT NOT NULL DEFAULT 0;
