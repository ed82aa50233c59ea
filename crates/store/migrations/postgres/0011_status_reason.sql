-- Why a connection is Logged out or Not available, as a stable code (issue #14; the words stay
-- in status_detail), and since when its renewals or calls have been failing for a transient
-- cause (it turns Not available once that lasts past the grace period).
ALTER TABLE connections ADD COLUMN status_reason TEXT;
ALTER TABLE connections ADD COLUMN failing_since BIGINT;
