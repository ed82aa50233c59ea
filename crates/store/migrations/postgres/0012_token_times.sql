-- Issue #14. `renewed_at`: when the connection last got tokens from Salesforce (a sign-in or a
-- renewal); the keep-alive renews an OAuth connection before an app's idle refresh-token
-- policy can end it. `granted_at`: when its current OAuth grant (approval) was given, to tell
-- which of a Salesforce user's connections through one app a sixth sign-in revokes. Existing
-- grants are dated by their connection's creation (the best this database knows).
ALTER TABLE connections ADD COLUMN renewed_at BIGINT;
ALTER TABLE connections ADD COLUMN granted_at BIGINT;
UPDATE connections SET renewed_at = COALESCE(status_checked_at, modified_at), granted_at = created_at
    WHERE auth_method = 'oauth' AND refresh_token IS NOT NULL;
