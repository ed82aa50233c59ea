//! The SQLite store: one file, WAL mode, migrations applied at open.

use std::path::Path;
use std::str::FromStr;

use domain::{
    AccountId, ActorKind, AuditEntry, Connection, ConnectionId, ConnectionStatus, Millis, Role, SystemId, User, UserId,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, SqlitePool};
use vault::{AccessToken, Binding, ClientSecret, JwtPrivateKey, Keyring, RefreshToken, Sealed};

use crate::StoreError;
use crate::access::{
    AccessStore, ApiTokenInfo, Attempt, AuditQuery, AuditStore, DomainClaim, Invitation, LiveSession, Membership,
    NewSession, RoutedDomain, SessionInfo, SsoConfig, Throttle, TokenOwner, TwoFactor,
};
use crate::connections::{
    Clauses, ConnectionSecrets, ConnectionStore, Cursor, ListQuery, NewSecrets, PREFIX_COLUMNS, Page, Rotation,
    SHORT_SEARCH_CAP, SortKey, TABLE_COLUMNS, TableRow, TableRowRef, TokenSet, is_short, prefix_bounds,
};
use crate::rows::{
    COLUMNS, auth_columns, conflict, instance, kind_columns, open_field, org_type, parse_chunk, seal_field, search_text,
};
use crate::rows::{invitation_of, one_or_not_found, row_to_connection, row_to_user};

/// What SQLite spells differently from PostgreSQL, for the statements in `shared.rs`.
pub(crate) mod dialect {
    /// Written before a column in a condition, keeps the planner from using that column's
    /// indexes (SQLite's unary `+`); empty where the database needs no such hint.
    pub(crate) const NOT_INDEXED: &str = "+";
    /// Said beside the Logged out or Not available filter: SQLite takes a partial index only
    /// when its condition is written in the query (migration 0032's prefix indexes).
    pub(crate) const NOT_LOGGED_IN: &str = " AND status != 'logged_in'";

    /// `column` equal to the next parameter, ignoring case.
    pub(crate) fn same_text(column: &str) -> String {
        format!("{column} = ? COLLATE NOCASE")
    }

    /// `column` as an ORDER BY term, ignoring case.
    pub(crate) fn text_order(column: &str) -> String {
        format!("{column} COLLATE NOCASE")
    }

    /// The rows' `fields` folded into one JSON array (text), in `order`; `[]` for none.
    pub(crate) fn json_rows(fields: &str, order: &str) -> String {
        format!("json_group_array(json_array({fields}) ORDER BY {order})")
    }

    /// A text parameter that may be NULL (`? IS NULL OR …`).
    pub(crate) const NULLABLE_TEXT: &str = "?";
    /// The column that orders deployment targets as they were queued.
    pub(crate) const ROW_KEY: &str = "rowid";
    /// What a claim adds so that rows another instance is claiming are skipped, not waited for.
    pub(crate) const SKIP_LOCKED: &str = "";
    /// An integer parameter that may be NULL.
    pub(crate) const NULLABLE_BIGINT: &str = "?";
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A statement as written (SQLite takes `?` placeholders); the same name as PostgreSQL's
/// placeholder-numbering wrapper, so statements shared by both stores read the same.
pub(crate) fn query<'a>(
    sql: impl AsRef<str>,
) -> sqlx::query::Query<'a, sqlx::Sqlite, <sqlx::Sqlite as sqlx::Database>::Arguments> {
    sqlx::query(AssertSqlSafe(sql.as_ref().to_string()))
}

/// A one-column statement as written.
pub(crate) fn query_scalar<'a, O>(
    sql: impl AsRef<str>,
) -> sqlx::query::QueryScalar<'a, sqlx::Sqlite, O, <sqlx::Sqlite as sqlx::Database>::Arguments>
where
    (O,): for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
{
    sqlx::query_scalar(AssertSqlSafe(sql.as_ref().to_string()))
}

/// Creates `dir` (and its parents) if needed and makes it readable by its owner only (0700 on
/// Unix): the data folder holds the database and, in the demo, its key.
pub fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let failed = |source| StoreError::File { path: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(failed)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(failed)?;
    }
    Ok(())
}

/// The database file is created 0600 before SQLite opens it (SQLite gives its `-wal` and
/// `-shm` files the database file's mode); a file or sidecar left readable by others by an
/// older version is narrowed to 0600.
fn private_database_file(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let failed = |p: &Path| {
            let p = p.to_path_buf();
            move |source| StoreError::File { path: p, source }
        };
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(failed(path)(e)),
        }
        let mut sidecars = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_os_string();
            name.push(suffix);
            sidecars.push(name.into());
        }
        for file in sidecars {
            let Ok(meta) = std::fs::metadata(&file) else { continue };
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(failed(&file))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (WAL: they never wait for the writer).
    pool: SqlitePool,
    /// The one connection that writes. SQLite takes one writer at a time; with several writing
    /// connections the others sleep in SQLite's busy handler (1, 2, 5 … 100 ms steps), which
    /// under a publishing fan-out cost more than the writes. Here writers queue in the pool,
    /// in order, and start the moment the previous one commits.
    writer: SqlitePool,
    pub(crate) keys: Keyring,
    /// Which trigrams of a search term are rare (#17).
    pub(crate) rarity: crate::search::Rarity,
    /// The database file (none in memory), for the export's direct read.
    path: Option<std::path::PathBuf>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, applies migrations, and checks that the
    /// master key is the one the database was sealed with.
    pub async fn open(path: &Path, keys: Keyring) -> Result<Self, StoreError> {
        private_database_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options.clone()).await?;
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        let store = SqliteStore { pool, writer, keys, rarity: Default::default(), path: Some(path.to_path_buf()) };
        store.migrate().await?;
        store.check_key().await?;
        Ok(store)
    }

    /// An in-memory database, for tests.
    pub async fn in_memory(keys: Keyring) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        let store = SqliteStore { writer: pool.clone(), pool, keys, rarity: Default::default(), path: None };
        store.migrate().await?;
        store.check_key().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn check_key(&self) -> Result<(), StoreError> {
        let fingerprint = self.keys.current().fingerprint().to_string();
        let stored: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'master_key_fingerprint'")
                .fetch_optional(self.writer())
                .await?;
        match stored {
            None => {
                sqlx::query("INSERT INTO settings (key, value) VALUES ('master_key_fingerprint', ?)")
                    .bind(&fingerprint)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }
            // The current key, or an older one the keyring still holds (a rotation under way).
            Some(s) if self.keys.knows(&s) => Ok(()),
            Some(s) => Err(StoreError::KeyMismatch {
                stored: s[..8.min(s.len())].to_string(),
                configured: fingerprint[..8].to_string(),
            }),
        }
    }

    /// Opens a transaction: what is written through it commits together or not at all.
    pub async fn begin(&self) -> Result<crate::Tx, StoreError> {
        Ok(crate::Tx::sqlite(self.writer.begin().await?, self.keys.clone()))
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Whether [`Self::read_table_blocking`] can read (the database is a file).
    pub fn reads_directly(&self) -> bool {
        self.path.is_some()
    }

    /// The table's rows for an export, in the query's order, read on the calling thread (a
    /// blocking one) through a read-only connection of its own and handed to `each` borrowed
    /// from SQLite's row: a million rows without a value copied or a message passed per row,
    /// where the pool's driver costs several microseconds a row (#17: the CSV export within
    /// 1.5× of `sqlite3 -csv`). `each` returns false to stop. `None` for a database in memory.
    pub fn read_table_blocking(
        &self,
        account: &AccountId,
        q: &ListQuery,
        each: &mut dyn FnMut(TableRowRef<'_>) -> bool,
    ) -> Option<Result<(), StoreError>> {
        let path = self.path.as_ref()?;
        let mut read = || -> rusqlite::Result<()> {
            use rusqlite::OpenFlags;
            let Clauses { filter, search, order, .. } = list_clauses(q, &[]);
            let db = rusqlite::Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            db.busy_timeout(std::time::Duration::from_secs(5))?;
            let mut statement =
                db.prepare(&format!("SELECT {TABLE_COLUMNS} FROM connections WHERE {filter} ORDER BY {order}"))?;
            let binds = std::iter::once(account.as_str()).chain(search.iter().map(String::as_str));
            let mut rows = statement.query(rusqlite::params_from_iter(binds))?;
            while let Some(row) = rows.next()? {
                let text = |i: usize| row.get_ref(i).and_then(|v| Ok(v.as_str()?));
                let maybe = |i: usize| row.get_ref(i).and_then(|v| Ok(v.as_str_or_null()?));
                let number = |i: usize| row.get_ref(i).and_then(|v| Ok(v.as_i64()?));
                let r = TableRowRef::from_columns(text, maybe, number)?;
                if !each(r) {
                    break;
                }
            }
            Ok(())
        };
        Some(read().map_err(|e| StoreError::DirectRead(e.to_string())))
    }

    /// Raw access for tests that must prove what is (not) on disk.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The pool for statements that write.
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }
}

/// The WHERE filter, the bound search term and the ORDER BY of a table query (F6, F7, #16).
/// Only constants and enum-chosen text go into the SQL; every value the caller gave is bound.
fn list_clauses(q: &ListQuery, rare: &[String]) -> Clauses {
    let term = q.search_term();
    // Three characters or more: the trigram index finds the rows (an exact, case-folded
    // substring match of the quoted phrase) — or, when the sample named the term's rarest
    // trigrams, the rows holding those, on which the whole term is then matched exactly.
    // Shorter terms match the start of the org's name or of an email: a range on each column's
    // sort index.
    // With the Logged out or Not available filter, that status's own index holds every
    // candidate (migration 0033).
    let index = match q.filters.status {
        Some(ConnectionStatus::LoggedOut) => "connections_search_logged_out",
        Some(ConnectionStatus::NotAvailable) => "connections_search_not_available",
        _ => "connections_search",
    };
    let (filter, search) = match term {
        Some(t) if !is_short(&t) && !rare.is_empty() => (
            format!(
                "+account_id = ? AND seq IN (SELECT rowid FROM {index} WHERE {index} MATCH ?) AND instr(search_text, ?) > 0"
            ),
            vec![rare.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(" AND "), t],
        ),
        Some(t) if !is_short(&t) => (
            // `+account_id` keeps the planner from walking the account's index: it starts
            // from the (few) matches instead.
            format!("+account_id = ? AND seq IN (SELECT rowid FROM {index} WHERE {index} MATCH ?)"),
            vec![format!("\"{}\"", t.replace('"', "\"\""))],
        ),
        Some(t) => {
            let ranges: Vec<String> = PREFIX_COLUMNS
                .iter()
                .map(|c| format!("(COALESCE({c}, '') COLLATE NOCASE >= ? AND COALESCE({c}, '') COLLATE NOCASE < ?)"))
                .collect();
            (format!("account_id = ? AND ({})", ranges.join(" OR ")), prefix_bounds(&t))
        }
        None => ("account_id = ?".to_string(), Vec::new()),
    };
    // The same expression as the `connections_by_*` indexes, so they serve the order.
    let mut clauses = Clauses::new(
        q,
        &filter,
        search,
        |column| format!("COALESCE({column}, '') COLLATE NOCASE"),
        dialect::NOT_LOGGED_IN,
    );
    if clauses.capped {
        clauses.prefix_ranges = PREFIX_COLUMNS
            .iter()
            .map(|c| format!("COALESCE({c}, '') COLLATE NOCASE >= ? AND COALESCE({c}, '') COLLATE NOCASE < ?"))
            .collect();
    }
    clauses
}

impl ConnectionStore for SqliteStore {
    crate::shared::shared_connection_methods!();
}

impl AccessStore for SqliteStore {
    crate::shared::shared_access_methods!();
}

impl AuditStore for SqliteStore {
    crate::shared::shared_audit_methods!();
}

/// Statements shared with the other database, runnable on the pool or inside a [`crate::Tx`].
pub(crate) mod statements {
    use domain::{AccountId, AuditEntry, Connection, ConnectionId};
    use vault::{ClientSecret, JwtPrivateKey, Keyring, RefreshToken};

    use super::{query, query_scalar};
    use crate::StoreError;
    use crate::connections::NewSecrets;
    use crate::rows::{auth_columns, conflict, instance, kind_columns, org_type, seal_field, search_text};

    type Db = sqlx::Sqlite;

    crate::shared::shared_statements!();
    crate::notifications::notification_statements!();
}
