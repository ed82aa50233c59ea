//! The PostgreSQL store: for deployments that run several instances on one database (issue #6).
//! The same traits and conformance suite as SQLite; the SQL differs where the dialects do
//! (placeholders, case-folding, JSON, search, and `FOR UPDATE SKIP LOCKED` for claims).

use domain::{
    AccountId, ActorKind, AuditEntry, Connection, ConnectionId, ConnectionStatus, Millis, Role, SystemId, User, UserId,
};
use sqlx::postgres::{PgArguments, PgPoolOptions, PgRow};
use sqlx::query::{Query, QueryScalar};
use sqlx::{AssertSqlSafe, FromRow, PgPool, Postgres, Row};
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
    COLUMNS, auth_columns, conflict, instance, kind_columns, like_pattern, open_field, org_type, parse_chunk,
    seal_field, search_text,
};
use crate::rows::{invitation_of, one_or_not_found, row_to_connection, row_to_user};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// `?` and `?N` placeholders (the SQLite spelling the statements share) as PostgreSQL's `$N`,
/// outside quoted text.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 0;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    digits = next.to_string();
                }
                out.push('$');
                out.push_str(&digits);
            }
            _ => out.push(c),
        }
    }
    out
}

/// `sql` with each `?` outside quoted text replaced by its value as a dollar-quoted literal
/// (for `COPY`, which takes no parameters): the tag is one the value does not contain, and
/// dollar-quoted text has no escapes, so no value can end it early.
fn inline_binds(sql: &str, values: &[&str]) -> String {
    let mut values = values.iter();
    let mut out = String::with_capacity(sql.len() + 64);
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                let value = values.next().copied().unwrap_or_default();
                // The literal ends where the tag first appears after the opening one: only at
                // its own end (a value ending in `$lb` would otherwise close it early).
                let mut tag = String::from("$lb$");
                let mut n = 0;
                while format!("{value}{tag}").find(&tag) != Some(value.len()) {
                    n += 1;
                    tag = format!("$lb{n}$");
                }
                out.push_str(&tag);
                out.push_str(value);
                out.push_str(&tag);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn inlined_values_cannot_end_their_literal() {
        let sql = super::inline_binds("a = ? AND b LIKE ? ESCAPE '\\' AND c = '?'", &["x'y", "$lb$%"]);
        assert_eq!(sql, "a = $lb$x'y$lb$ AND b LIKE $lb1$$lb$%$lb1$ ESCAPE '\\' AND c = '?'");
        assert_eq!(super::inline_binds("?", &["z$lb"]), "$lb1$z$lb$lb1$");
    }
}

/// `postgres://user@host:port/db?opts` with another database name.
fn url_with_database(url: &str, database: &str) -> String {
    let (base, options) = url.split_once('?').map_or((url, None), |(b, o)| (b, Some(o)));
    let Some(slash) = base.rfind('/').filter(|i| *i > "postgres://".len()) else { return String::new() };
    let mut out = format!("{}/{database}", &base[..slash]);
    if let Some(o) = options {
        out.push('?');
        out.push_str(o);
    }
    out
}

/// What PostgreSQL spells differently from SQLite, for the statements in `shared.rs`.
pub(crate) mod dialect {
    /// Written before a column in a condition, keeps the planner from using that column's
    /// indexes (SQLite's unary `+`); empty where the database needs no such hint.
    pub(crate) const NOT_INDEXED: &str = "";
    /// Nothing: PostgreSQL proves a partial index's condition itself (and said anyway, the
    /// implied condition misled its estimates: 23 ms instead of 1.3 for a short search).
    pub(crate) const NOT_LOGGED_IN: &str = "";

    /// `column` equal to the next parameter, ignoring case.
    pub(crate) fn same_text(column: &str) -> String {
        format!("lower({column}) = lower(?)")
    }

    /// `column` as an ORDER BY term, ignoring case.
    pub(crate) fn text_order(column: &str) -> String {
        format!("lower({column})")
    }

    /// The rows' `fields` folded into one JSON array (text), in `order`; `[]` for none.
    pub(crate) fn json_rows(fields: &str, order: &str) -> String {
        format!("COALESCE(json_agg(json_build_array({fields}) ORDER BY {order}), '[]')::text")
    }

    /// A text parameter that may be NULL (PostgreSQL must be told its type).
    pub(crate) const NULLABLE_TEXT: &str = "?::text";
    /// The column that orders deployment targets as they were queued.
    pub(crate) const ROW_KEY: &str = "seq";
    /// What a claim adds so that rows another instance is claiming are skipped, not waited for.
    pub(crate) const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";
    /// An integer parameter that may be NULL.
    pub(crate) const NULLABLE_BIGINT: &str = "?::bigint";
}

/// A statement with its placeholders numbered for PostgreSQL.
pub(crate) fn query<'a>(sql: impl AsRef<str>) -> Query<'a, Postgres, PgArguments> {
    sqlx::query(AssertSqlSafe(numbered(sql.as_ref())))
}

/// A one-column statement with its placeholders numbered for PostgreSQL.
pub(crate) fn query_scalar<'a, O>(sql: impl AsRef<str>) -> QueryScalar<'a, Postgres, O, PgArguments>
where
    (O,): for<'r> FromRow<'r, PgRow>,
{
    sqlx::query_scalar(AssertSqlSafe(numbered(sql.as_ref())))
}

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    pub(crate) keys: Keyring,
    /// Which trigrams of a search term are rare (#17).
    pub(crate) rarity: crate::search::Rarity,
}

impl PgStore {
    /// Connects (`postgres://…`), applies migrations (under PostgreSQL's advisory lock, so
    /// instances starting together take turns), and checks that the master key is the one the
    /// database was sealed with.
    pub async fn open(url: &str, max_connections: u32, keys: Keyring) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await?;
        let store = PgStore { pool, keys, rarity: Default::default() };
        MIGRATOR.run(&store.pool).await?;
        store.check_key().await?;
        Ok(store)
    }

    /// A new, empty database on the server `admin_url` points at, opened: for tests, which each
    /// get their own (`LIGHTBRIDGE_TEST_POSTGRES`, set by `scripts/with-postgres`).
    pub async fn scratch(admin_url: &str, keys: Keyring) -> Result<Self, StoreError> {
        let name = format!("lightbridge_{}", domain::UserId::generate().as_str().trim_start_matches("user_"));
        let admin = PgPoolOptions::new().max_connections(1).connect(admin_url).await?;
        query(format!("CREATE DATABASE {name}")).execute(&admin).await?;
        admin.close().await;
        let mut url = url_with_database(admin_url, &name);
        if url.is_empty() {
            url = admin_url.to_string();
        }
        Self::open(&url, 8, keys).await
    }

    async fn check_key(&self) -> Result<(), StoreError> {
        let fingerprint = self.keys.current().fingerprint().to_string();
        // Instances opening a new database together: the first one's insert stands.
        query("INSERT INTO settings (key, value) VALUES ('master_key_fingerprint', ?) ON CONFLICT (key) DO NOTHING")
            .bind(&fingerprint)
            .execute(&self.pool)
            .await?;
        let stored: String = query_scalar("SELECT value FROM settings WHERE key = 'master_key_fingerprint'")
            .fetch_one(&self.pool)
            .await?;
        // The current key, or an older one the keyring still holds (a rotation under way).
        if self.keys.knows(&stored) {
            Ok(())
        } else {
            Err(StoreError::KeyMismatch {
                stored: stored[..8.min(stored.len())].to_string(),
                configured: fingerprint[..8].to_string(),
            })
        }
    }

    /// Opens a transaction: what is written through it commits together or not at all.
    pub async fn begin(&self) -> Result<crate::Tx, StoreError> {
        Ok(crate::Tx::postgres(self.pool.begin().await?, self.keys.clone()))
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The table's rows for an export, in the query's order, read on the calling thread (a
    /// blocking one, in the runtime) from PostgreSQL's `COPY … TO STDOUT (FORMAT csv)` as the
    /// server writes it, and handed to `each` borrowed from the stream (#17: the CSV export
    /// within 1.5× of `psql \copy`; the pool's rows cost far more). `each` returns false to stop.
    pub fn read_table_blocking(
        &self,
        account: &AccountId,
        q: &ListQuery,
        each: &mut dyn FnMut(TableRowRef<'_>) -> bool,
    ) -> Result<(), StoreError> {
        let Clauses { filter, search, order, .. } = list_clauses(q, &[]);
        let values: Vec<&str> = std::iter::once(account.as_str()).chain(search.iter().map(String::as_str)).collect();
        let statement = format!(
            "COPY (SELECT {TABLE_COLUMNS} FROM connections WHERE {} ORDER BY {order}) TO STDOUT (FORMAT csv)",
            inline_binds(&filter, &values)
        );
        let runtime = tokio::runtime::Handle::current();
        let mut connection = runtime.block_on(self.pool.acquire())?;
        let (read, ended) = match runtime.block_on(connection.copy_out_raw(&statement)) {
            Ok(mut stream) => {
                let chunks =
                    CopyChunks { runtime: &runtime, stream: &mut stream, chunk: Default::default(), ended: false };
                let mut reader =
                    csv::ReaderBuilder::new().has_headers(false).buffer_capacity(256 * 1024).from_reader(chunks);
                let read = read_copied_rows(&mut reader, each);
                (read, reader.get_ref().ended)
            }
            Err(e) => (Err(e.into()), false),
        };
        // Left mid-COPY (the reader stopped, or a row was bad), the connection would hand its
        // next user the rest of the copy: it is closed instead of going back to the pool.
        if !ended {
            connection.close_on_drop();
        }
        read
    }

    /// Raw access for tests that must prove what is (not) on disk.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// PostgreSQL takes concurrent writers: one pool for all.
    pub fn writer(&self) -> &PgPool {
        &self.pool
    }
}

/// The WHERE filter, the bound search term and the ORDER BY of a table query (F6, F7, #16).
/// Only constants and enum-chosen text go into the SQL; every value the caller gave is bound.
fn list_clauses(q: &ListQuery, rare: &[String]) -> Clauses {
    let term = q.search_term();
    // A case-folded substring match; a pg_trgm GIN index serves it when the extension is there
    // — given only the term's rarest trigrams when the sample named them (the whole term is
    // then matched exactly, by a test the index cannot take over: `strpos`).
    // Shorter terms match the start of the org's name or of an email: a byte-wise range on an
    // index of each (migration 0020).
    let (filter, search) = match term {
        Some(t) if !is_short(&t) && !rare.is_empty() => {
            let likes = " AND search_text LIKE ?".repeat(rare.len());
            let mut binds: Vec<String> = rare.iter().map(|r| format!("%{r}%")).collect();
            binds.push(t);
            (format!("account_id = ?{likes} AND strpos(search_text, ?) > 0"), binds)
        }
        Some(t) if !is_short(&t) => {
            ("account_id = ? AND search_text LIKE ? ESCAPE '\\'".to_string(), vec![like_pattern(&t)])
        }
        Some(t) => {
            let ranges: Vec<String> = prefix_ranges().iter().map(|r| format!("({r})")).collect();
            (format!("account_id = ? AND ({})", ranges.join(" OR ")), prefix_bounds(&t))
        }
        None => ("account_id = ?".to_string(), Vec::new()),
    };
    // The same expression as the `connections_by_*` indexes, so they serve the order.
    let mut clauses =
        Clauses::new(q, &filter, search, |column| format!("lower(COALESCE({column}, ''))"), dialect::NOT_LOGGED_IN);
    if clauses.capped {
        clauses.prefix_ranges = prefix_ranges();
    }
    clauses
}

/// A short search's byte-wise range on each prefix column (migration 0020's indexes).
fn prefix_ranges() -> Vec<String> {
    PREFIX_COLUMNS
        .iter()
        .map(|c| {
            let e = format!("(lower(COALESCE({c}, '')) COLLATE \"C\")");
            format!("{e} >= ? AND {e} < ?")
        })
        .collect()
}

/// A `COPY … TO STDOUT` stream's chunks, as something to read from (on a blocking thread).
struct CopyChunks<'a, 's> {
    runtime: &'a tokio::runtime::Handle,
    stream: &'a mut futures_util::stream::BoxStream<'s, sqlx::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
    /// The server said the copy is over.
    ended: bool,
}

impl std::io::Read for CopyChunks<'_, '_> {
    fn read(&mut self, into: &mut [u8]) -> std::io::Result<usize> {
        use futures_util::StreamExt;
        while self.chunk.is_empty() {
            match self.runtime.block_on(self.stream.next()) {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => {
                    self.ended = true;
                    return Ok(0);
                }
            }
        }
        let n = into.len().min(self.chunk.len());
        into[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// The rows of the export's copy (its ten columns as CSV), each handed to `each` borrowed.
fn read_copied_rows(
    reader: &mut csv::Reader<CopyChunks<'_, '_>>,
    each: &mut dyn FnMut(TableRowRef<'_>) -> bool,
) -> Result<(), StoreError> {
    let mut record = csv::ByteRecord::new();
    let bad = |what: &str| StoreError::DirectRead(format!("the export's COPY gave {what}"));
    while reader.read_byte_record(&mut record).map_err(|e| StoreError::DirectRead(e.to_string()))? {
        let text =
            |i: usize| std::str::from_utf8(record.get(i).unwrap_or_default()).map_err(|_| bad("text not in UTF-8"));
        let maybe = |i: usize| text(i).map(|t| Some(t).filter(|t| !t.is_empty()));
        let number = |i: usize| text(i)?.parse::<i64>().map_err(|_| bad("a number that is none"));
        let r = TableRowRef::from_columns(text, maybe, number)?;
        if !each(r) {
            break;
        }
    }
    Ok(())
}

impl ConnectionStore for PgStore {
    crate::shared::shared_connection_methods!();
}

impl AccessStore for PgStore {
    crate::shared::shared_access_methods!();
}

impl AuditStore for PgStore {
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

    type Db = sqlx::Postgres;

    crate::shared::shared_statements!();
    crate::notifications::notification_statements!();
}
