#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Vault(#[from] vault::VaultError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the export's direct read of SQLite (`SqliteStore::read_table_blocking`).
    #[error("database error: {0}")]
    DirectRead(String),
    #[error("cannot prepare {path}: {source}")]
    File { path: std::path::PathBuf, source: std::io::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(
        "the master key changed: the database was sealed with key {stored}, but the configured key is {configured}. Configure the original key, or rotate keys with `lightbridge keys rotate`."
    )]
    KeyMismatch { stored: String, configured: String },
}

impl From<domain::DomainError> for StoreError {
    fn from(e: domain::DomainError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}
