-- Which instance is renewing a connection's session, until when: instances sharing a database
-- take this lease so only one of them calls the token endpoint (a rotated refresh token is
-- never spent twice).
ALTER TABLE connections ADD COLUMN renewal_owner TEXT;
ALTER TABLE connections ADD COLUMN renewal_until BIGINT;
