-- Events older than the retention period are pruned with their deliveries, attempts and mails
-- (#18): found by time, and their rows by event.
CREATE INDEX events_by_time ON events (at);
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);
CREATE INDEX mail_outbox_by_event ON mail_outbox (event_id);
