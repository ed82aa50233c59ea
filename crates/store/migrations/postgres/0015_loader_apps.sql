-- Issue #15: the Lightning apps whose utility bars hold a system's loader (a JSON array of
-- app names, `standard__LightningSales` or `MyApp`). Settings saved before this column
-- existed get the standard Sales app, where every new org has a utility bar.
ALTER TABLE loader_settings ADD COLUMN apps TEXT NOT NULL DEFAULT '["standard__LightningSales"]';
