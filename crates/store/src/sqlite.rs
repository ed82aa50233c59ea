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
use crate::access::{AccessStore, ApiTokenInfo, AuditQuery, AuditStore, TokenOwner};
use crate::connections::{
    ConnectionSecrets, ConnectionStore, ListQuery, NewSecrets, Page, Rotation, SortKey, TableRow, TokenSet,
};
use crate::rows::sqlite::{row_to_connection, row_to_user};
use crate::rows::{
    COLUMNS, auth_columns, conflict, instance, kind_columns, like_pattern, open_field, org_type, parse_chunk,
    seal_field, search_text,
};

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

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Readers (WAL: they never wait for the writer).
    pool: SqlitePool,
    /// The one connection that writes. SQLite takes one writer at a time; with several writing
    /// connections the others sleep in SQLite's busy handler (1, 2, 5 … 100 ms steps), which
    /// under a publishing fan-out cost more than the writes. Here writers queue in the pool,
    /// in order, and start the moment the previous one commits.
    writer: SqlitePool,
    keys: Keyring,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, applies migrations, and checks that the
    /// master key is the one the database was sealed with.
    pub async fn open(path: &Path, keys: Keyring) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options.clone()).await?;
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        let store = SqliteStore { pool, writer, keys };
        store.migrate().await?;
        store.check_key().await?;
        Ok(store)
    }

    /// An in-memory database, for tests.
    pub async fn in_memory(keys: Keyring) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        let store = SqliteStore { writer: pool.clone(), pool, keys };
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

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
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

/// The WHERE filter, the bound search term and the ORDER BY of a table query (F6, F7). Only
/// constants and enum-chosen text go into the SQL; every value the caller gave is bound.
fn list_clauses(q: &ListQuery) -> (&'static str, Option<String>, String) {
    let term = q.search.as_deref().map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty());
    // Three characters or more: the trigram index finds the rows (an exact, case-folded
    // substring match of the quoted phrase). Shorter terms scan with LIKE.
    let (filter, search) = match term {
        Some(t) if t.chars().count() >= 3 => (
            // `+account_id` keeps the planner from walking the account's index: it starts
            // from the (few) matches instead.
            "+account_id = ? AND seq IN (SELECT rowid FROM connections_search WHERE connections_search MATCH ?)",
            Some(format!("\"{}\"", t.replace('"', "\"\""))),
        ),
        Some(t) => ("account_id = ? AND search_text LIKE ? ESCAPE '\\'", Some(like_pattern(&t))),
        None => ("account_id = ?", None),
    };
    let direction = if q.descending { "DESC" } else { "ASC" };
    let order = match q.sort {
        SortKey::CreatedAt => format!("created_at {direction}, id {direction}"),
        SortKey::ModifiedAt => format!("modified_at {direction}, id {direction}"),
        SortKey::AccountName => format!("org_name COLLATE NOCASE {direction}, id {direction}"),
    };
    (filter, search, order)
}

impl ConnectionStore for SqliteStore {
    crate::rows::shared_connection_methods!();

    async fn insert(&self, c: &Connection, secrets: &NewSecrets) -> Result<(), StoreError> {
        c.validate()?;
        let (legacy, name, system, environment, active) = kind_columns(&c.kind);
        let (method, key, jwt_user) = auth_columns(&c.auth);
        let org = c.org.as_ref();
        let tokens = secrets.tokens.as_ref();
        sqlx::query(
            "INSERT INTO connections (id, account_id, legacy, name, system_id, environment_id, active, org_type, login_host, auth_method, \
             consumer_key, jwt_username, org_id, org_name, instance_url, sf_user_id, sf_username, sf_email, status, status_detail, \
             status_checked_at, created_at, created_by, modified_at, modified_by, consumer_secret, private_key, access_token, refresh_token, \
             search_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(c.id.as_str())
        .bind(c.account_id.as_str())
        .bind(legacy)
        .bind(name)
        .bind(system)
        .bind(environment)
        .bind(active)
        .bind(org_type(c.org_type))
        .bind(c.login_host.as_setting())
        .bind(method)
        .bind(key)
        .bind(jwt_user)
        .bind(org.map(|o| o.org_id.as_str()))
        .bind(org.map(|o| o.org_name.as_str()))
        .bind(tokens.map(|t| instance(&t.instance_url)).or(org.map(|o| instance(&o.instance_url))))
        .bind(org.map(|o| o.user_id.as_str()))
        .bind(org.map(|o| o.username.as_str()))
        .bind(org.and_then(|o| o.email.as_deref()))
        .bind(c.status.as_str())
        .bind(c.status_detail.as_deref())
        .bind(c.status_checked_at)
        .bind(c.created_at)
        .bind(c.created_by.as_deref())
        .bind(c.modified_at)
        .bind(c.modified_by.as_deref())
        .bind(seal_field(&self.keys, &c.id, "consumer_secret", secrets.consumer_secret.as_ref().map(ClientSecret::expose_secret))?)
        .bind(seal_field(&self.keys, &c.id, "private_key", secrets.private_key.as_ref().map(JwtPrivateKey::expose_secret))?)
        .bind(seal_field(&self.keys, &c.id, "access_token", tokens.map(|t| t.access_token.expose_secret()))?)
        .bind(seal_field(&self.keys, &c.id, "refresh_token", tokens.and_then(|t| t.refresh_token.as_ref()).map(RefreshToken::expose_secret))?)
        .bind(search_text(c))
        .execute(self.writer())
        .await
        .map_err(conflict)?;
        Ok(())
    }

    async fn update(&self, c: &Connection, secrets: &NewSecrets) -> Result<(), StoreError> {
        c.validate()?;
        let (legacy, name, system, environment, active) = kind_columns(&c.kind);
        let (method, key, jwt_user) = auth_columns(&c.auth);
        let org = c.org.as_ref();
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query(
            "UPDATE connections SET legacy = ?, name = ?, system_id = ?, environment_id = ?, active = ?, org_type = ?, login_host = ?, \
             auth_method = ?, consumer_key = ?, jwt_username = ?, org_id = ?, org_name = ?, instance_url = COALESCE(?, instance_url), \
             sf_user_id = ?, sf_username = ?, sf_email = ?, status = ?, status_detail = ?, status_checked_at = ?, modified_at = ?, \
             modified_by = ?, search_text = ? WHERE id = ? AND account_id = ?",
        )
        .bind(legacy)
        .bind(name)
        .bind(system)
        .bind(environment)
        .bind(active)
        .bind(org_type(c.org_type))
        .bind(c.login_host.as_setting())
        .bind(method)
        .bind(key)
        .bind(jwt_user)
        .bind(org.map(|o| o.org_id.as_str()))
        .bind(org.map(|o| o.org_name.as_str()))
        .bind(org.map(|o| instance(&o.instance_url)))
        .bind(org.map(|o| o.user_id.as_str()))
        .bind(org.map(|o| o.username.as_str()))
        .bind(org.and_then(|o| o.email.as_deref()))
        .bind(c.status.as_str())
        .bind(c.status_detail.as_deref())
        .bind(c.status_checked_at)
        .bind(c.modified_at)
        .bind(c.modified_by.as_deref())
        .bind(search_text(c))
        .bind(c.id.as_str())
        .bind(c.account_id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(conflict)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        if let Some(secret) = &secrets.consumer_secret {
            sqlx::query("UPDATE connections SET consumer_secret = ? WHERE id = ?")
                .bind(seal_field(&self.keys, &c.id, "consumer_secret", Some(secret.expose_secret()))?)
                .bind(c.id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(key) = &secrets.private_key {
            sqlx::query("UPDATE connections SET private_key = ? WHERE id = ?")
                .bind(seal_field(&self.keys, &c.id, "private_key", Some(key.expose_secret()))?)
                .bind(c.id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(tokens) = &secrets.tokens {
            sqlx::query(
                "UPDATE connections SET access_token = ?, refresh_token = COALESCE(?, refresh_token), instance_url = ?, \
                 token_version = token_version + 1 WHERE id = ?",
            )
            .bind(seal_field(&self.keys, &c.id, "access_token", Some(tokens.access_token.expose_secret()))?)
            .bind(seal_field(&self.keys, &c.id, "refresh_token", tokens.refresh_token.as_ref().map(RefreshToken::expose_secret))?)
            .bind(instance(&tokens.instance_url))
            .bind(c.id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn get(&self, account: &AccountId, id: &ConnectionId) -> Result<Connection, StoreError> {
        let row =
            sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM connections WHERE id = ? AND account_id = ?")))
                .bind(id.as_str())
                .bind(account.as_str())
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
        row_to_connection(&row)
    }

    async fn list(&self, account: &AccountId, q: &ListQuery) -> Result<Page, StoreError> {
        let (filter, search, order) = list_clauses(q);
        let limit = q.limit.clamp(1, 500);
        // Only constants and the enum-chosen ORDER BY above go into the SQL text; every value
        // the caller gave is bound.
        let sql = AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM connections WHERE {filter} ORDER BY {order} LIMIT ? OFFSET ?"
        ));
        let mut rows_query = sqlx::query(sql).bind(account.as_str());
        let count_sql = if search.is_some() {
            AssertSqlSafe(format!("SELECT COUNT(*) FROM connections WHERE {filter}"))
        } else {
            AssertSqlSafe(
                "SELECT COALESCE((SELECT n FROM account_connection_counts WHERE account_id = ?), 0)".to_string(),
            )
        };
        let mut count_query = sqlx::query_scalar::<_, i64>(count_sql).bind(account.as_str());
        if let Some(pattern) = &search {
            rows_query = rows_query.bind(pattern);
            count_query = count_query.bind(pattern);
        }
        let rows = rows_query.bind(i64::from(limit)).bind(i64::from(q.offset)).fetch_all(&self.pool).await?;
        let total = count_query.fetch_one(&self.pool).await?;
        Ok(Page { rows: rows.iter().map(row_to_connection).collect::<Result<_, _>>()?, total: total as u64 })
    }

    fn stream<'a>(
        &'a self,
        account: &'a AccountId,
        q: &ListQuery,
    ) -> impl futures_util::Stream<Item = Result<Connection, StoreError>> + Send + 'a {
        use futures_util::StreamExt;
        let (filter, search, order) = list_clauses(q);
        let sql = AssertSqlSafe(format!("SELECT {COLUMNS} FROM connections WHERE {filter} ORDER BY {order}"));
        let mut query = sqlx::query(sql).bind(account.as_str());
        if let Some(pattern) = search {
            query = query.bind(pattern);
        }
        query.fetch(&self.pool).map(|row| row.map_err(StoreError::from).and_then(|r| row_to_connection(&r)))
    }

    fn table_chunks<'a>(
        &'a self,
        account: &'a AccountId,
        q: &ListQuery,
    ) -> impl futures_util::Stream<Item = Result<Vec<TableRow>, StoreError>> + Send + 'a {
        use futures_util::StreamExt;
        let (filter, search, order) = list_clauses(q);
        let fields = "id, legacy, org_type, org_name, created_at, created_by, modified_at, modified_by, status, active";
        let date_column = match q.sort {
            SortKey::CreatedAt => Some("created_at"),
            SortKey::ModifiedAt => Some("modified_at"),
            SortKey::AccountName => None,
        };
        let Some(column) = date_column else {
            // By account name: SQLite numbers the rows in the table's order and folds each
            // 2,000 into one JSON array, so the driver hands over 50 values for 100,000 rows.
            let sql = AssertSqlSafe(format!(
                "SELECT json_group_array(json_array({fields}) ORDER BY rn) AS chunk \
                 FROM (SELECT {fields}, ROW_NUMBER() OVER (ORDER BY {order}) AS rn FROM connections WHERE {filter}) \
                 GROUP BY (rn - 1) / 2000 ORDER BY MIN(rn)"
            ));
            let mut query = sqlx::query_scalar::<_, String>(sql).bind(account.as_str());
            if let Some(pattern) = search {
                query = query.bind(pattern);
            }
            return query.fetch(&self.pool).map(|chunk| parse_chunk(&chunk?)).boxed();
        };
        // By a date (the default): 2,000 rows at a time in the index's order, each chunk
        // starting after the last row of the one before (keyset), folded into one JSON array.
        let (cmp, dir) = if q.descending { ("<", "DESC") } else { (">", "ASC") };
        let chunk_sql = move |after: bool| {
            let keyset = if after { format!(" AND ({column}, id) {cmp} (?, ?)") } else { String::new() };
            format!(
                "SELECT json_group_array(json_array({fields}) ORDER BY {column} {dir}, id {dir}) FROM \
                 (SELECT {fields} FROM connections WHERE {filter}{keyset} ORDER BY {column} {dir}, id {dir} LIMIT 2000)"
            )
        };
        let (first, next) = (chunk_sql(false), chunk_sql(true));
        futures_util::stream::unfold((None::<(i64, String)>, false), move |(cursor, done)| {
            let (first, next, search) = (first.clone(), next.clone(), search.clone());
            async move {
                if done {
                    return None;
                }
                let sql = if cursor.is_some() { next } else { first };
                let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql)).bind(account.as_str());
                if let Some(pattern) = search {
                    query = query.bind(pattern);
                }
                if let Some((value, id)) = &cursor {
                    query = query.bind(*value).bind(id.clone());
                }
                let rows =
                    match query.fetch_one(&self.pool).await.map_err(StoreError::from).and_then(|t| parse_chunk(&t)) {
                        Ok(rows) => rows,
                        Err(e) => return Some((Err(e), (None, true))),
                    };
                let last = rows
                    .last()
                    .map(|r| (if column == "created_at" { r.created_at } else { r.modified_at }, r.id.clone()));
                match last {
                    None => None,
                    Some(last) => {
                        let done = rows.len() < 2000;
                        Some((Ok(rows), (Some(last), done)))
                    }
                }
            }
        })
        .boxed()
    }

    async fn name_taken(
        &self,
        account: &AccountId,
        name: &str,
        except: Option<&ConnectionId>,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM connections WHERE account_id = ? AND name = ? COLLATE NOCASE AND (? IS NULL OR id != ?) LIMIT 1",
        )
        .bind(account.as_str())
        .bind(name.trim())
        .bind(except.map(ConnectionId::as_str))
        .bind(except.map(ConnectionId::as_str))
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    async fn legacy_connectors(&self, account: &AccountId, system: &SystemId) -> Result<Vec<Connection>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM connections WHERE account_id = ? AND legacy = 1 AND system_id = ? ORDER BY created_at, id"
        )))
        .bind(account.as_str())
        .bind(system.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_connection).collect()
    }

    async fn delete(&self, account: &AccountId, id: &ConnectionId) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM connections WHERE id = ? AND account_id = ?")
            .bind(id.as_str())
            .bind(account.as_str())
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn secrets(&self, id: &ConnectionId) -> Result<ConnectionSecrets, StoreError> {
        let row = sqlx::query("SELECT consumer_secret, private_key, access_token, refresh_token, instance_url, token_version FROM connections WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        let field = |name: &str| -> Result<Option<String>, StoreError> {
            Ok(open_field(&self.keys, id, name, row.try_get(name)?)?.map(|s| s.as_str().to_string()))
        };
        Ok(ConnectionSecrets {
            consumer_secret: field("consumer_secret")?.map(ClientSecret::new),
            private_key: field("private_key")?.map(JwtPrivateKey::new),
            access_token: field("access_token")?.map(AccessToken::new),
            refresh_token: field("refresh_token")?.map(RefreshToken::new),
            instance_url: row.try_get("instance_url")?,
            token_version: row.try_get("token_version")?,
        })
    }

    async fn save_tokens(
        &self,
        id: &ConnectionId,
        tokens: &TokenSet,
        seen_version: i64,
        now: Millis,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE connections SET access_token = ?, refresh_token = COALESCE(?, refresh_token), instance_url = ?, \
             token_version = token_version + 1, status = 'logged_in', status_detail = NULL, status_checked_at = ? \
             WHERE id = ? AND token_version = ?",
        )
        .bind(seal_field(&self.keys, id, "access_token", Some(tokens.access_token.expose_secret()))?)
        .bind(seal_field(
            &self.keys,
            id,
            "refresh_token",
            tokens.refresh_token.as_ref().map(RefreshToken::expose_secret),
        )?)
        .bind(instance(&tokens.instance_url))
        .bind(now)
        .bind(id.as_str())
        .bind(seen_version)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn due_for_check(&self, before: Millis, limit: u32) -> Result<Vec<Connection>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM connections WHERE status_checked_at IS NULL OR status_checked_at <= ? \
             ORDER BY COALESCE(status_checked_at, 0), seq LIMIT ?"
        )))
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_connection).collect()
    }

    async fn set_status(
        &self,
        id: &ConnectionId,
        status: ConnectionStatus,
        detail: Option<&str>,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE connections SET status = ?, status_detail = ?, status_checked_at = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(detail)
            .bind(now)
            .bind(id.as_str())
            .execute(self.writer())
            .await?;
        Ok(())
    }
}

impl AccessStore for SqliteStore {
    async fn create_user(&self, user: &User, password_hash: Option<&str>, now: Millis) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO users (id, account_id, email, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(user.id.as_str())
            .bind(user.account_id.as_ref().map(AccountId::as_str))
            .bind(&user.email)
            .bind(&user.name)
            .bind(user.role.as_str())
            .bind(password_hash)
            .bind(now)
            .execute(self.writer())
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(format!("a user with email {} already exists", user.email)),
                _ => StoreError::Database(e),
            })?;
        Ok(())
    }

    async fn user_by_email(&self, email: &str) -> Result<User, StoreError> {
        let row = sqlx::query("SELECT id, account_id, email, name, role FROM users WHERE email = ? COLLATE NOCASE")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        row_to_user(&row)
    }

    async fn create_api_token(
        &self,
        id: &str,
        user: &UserId,
        name: &str,
        token_hash: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(id)
            .bind(user.as_str())
            .bind(name)
            .bind(token_hash)
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn api_token_owner(&self, token_hash: &str, now: Millis) -> Result<TokenOwner, StoreError> {
        let row = sqlx::query(
            "SELECT t.id AS token_id, t.last_used_at, u.id, u.account_id, u.email, u.name, u.role FROM api_tokens t \
             JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND t.revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(self.writer())
        .await?
        .ok_or(StoreError::NotFound)?;
        let token_id: String = row.try_get("token_id")?;
        let last_used: Option<i64> = row.try_get("last_used_at")?;
        // Record use at most once a minute (a write per request would serialize the API), and
        // best effort: a busy database must not refuse the request.
        if last_used.is_none_or(|t| now - t > 60_000) {
            let _ = sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
                .bind(now)
                .bind(&token_id)
                .execute(self.writer())
                .await;
        }
        Ok(TokenOwner { token_id, user: row_to_user(&row)? })
    }

    async fn users(&self, account: &AccountId) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, account_id, email, name, role FROM users WHERE account_id = ? ORDER BY email COLLATE NOCASE",
        )
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_user).collect()
    }

    async fn user(&self, account: &AccountId, id: &UserId) -> Result<User, StoreError> {
        let row = sqlx::query("SELECT id, account_id, email, name, role FROM users WHERE id = ? AND account_id = ?")
            .bind(id.as_str())
            .bind(account.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        row_to_user(&row)
    }

    async fn set_role(&self, account: &AccountId, id: &UserId, role: Role) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE users SET role = ? WHERE id = ? AND account_id = ?")
            .bind(role.as_str())
            .bind(id.as_str())
            .bind(account.as_str())
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn delete_user(&self, account: &AccountId, id: &UserId) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM users WHERE id = ? AND account_id = ?")
            .bind(id.as_str())
            .bind(account.as_str())
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn api_tokens(&self, user: &UserId) -> Result<Vec<ApiTokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = ? ORDER BY created_at DESC, id DESC",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApiTokenInfo {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    last_used_at: r.try_get("last_used_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    async fn revoke_api_token(&self, user: &UserId, id: &str, now: Millis) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND user_id = ?")
                .bind(now)
                .bind(id)
                .bind(user.as_str())
                .execute(self.writer())
                .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn preference(&self, user: &UserId, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM user_preferences WHERE user_id = ? AND key = ?")
            .bind(user.as_str())
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_preference(&self, user: &UserId, key: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO user_preferences (user_id, key, value) VALUES (?, ?, ?) \
             ON CONFLICT (user_id, key) DO UPDATE SET value = excluded.value",
        )
        .bind(user.as_str())
        .bind(key)
        .bind(value)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn set_password(&self, user: &UserId, password_hash: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
            .bind(password_hash)
            .bind(user.as_str())
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn credentials(&self, email: &str) -> Result<(User, Option<String>), StoreError> {
        let row = sqlx::query(
            "SELECT id, account_id, email, name, role, password_hash FROM users WHERE email = ? COLLATE NOCASE",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok((row_to_user(&row)?, row.try_get("password_hash")?))
    }

    async fn create_session(
        &self,
        id_hash: &str,
        user: &UserId,
        csrf_token: &str,
        now: Millis,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        let _ = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?").bind(now).execute(self.writer()).await;
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id_hash)
        .bind(user.as_str())
        .bind(csrf_token)
        .bind(now)
        .bind(expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn session(&self, id_hash: &str, now: Millis) -> Result<(User, String), StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.account_id, u.email, u.name, u.role, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = ? AND s.expires_at > ?",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)?;
        Ok((row_to_user(&row)?, row.try_get("csrf_token")?))
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?").bind(id_hash).execute(self.writer()).await?;
        Ok(())
    }

    async fn save_oauth_state(
        &self,
        state_hash: &str,
        account: &AccountId,
        user: &UserId,
        payload: &str,
        expires_at: Millis,
    ) -> Result<(), StoreError> {
        let sealed = self.keys.seal_str(payload, Binding::new(state_hash, "oauth_state"))?;
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, account_id, user_id, payload, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(state_hash)
        .bind(account.as_str())
        .bind(user.as_str())
        .bind(sealed.as_stored())
        .bind(expires_at)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn take_oauth_state(
        &self,
        state_hash: &str,
        account: &AccountId,
        user: &UserId,
        now: Millis,
    ) -> Result<String, StoreError> {
        let _ = sqlx::query("DELETE FROM oauth_states WHERE expires_at <= ?").bind(now).execute(self.writer()).await;
        let row = sqlx::query("DELETE FROM oauth_states WHERE state_hash = ? AND account_id = ? AND user_id = ? AND expires_at > ? RETURNING payload")
            .bind(state_hash)
            .bind(account.as_str())
            .bind(user.as_str())
            .bind(now)
            .fetch_optional(self.writer())
            .await?
            .ok_or(StoreError::NotFound)?;
        let sealed: String = row.try_get("payload")?;
        Ok(self
            .keys
            .open_string(&Sealed::from_stored(sealed), Binding::new(state_hash, "oauth_state"))?
            .as_str()
            .to_string())
    }
}

impl AuditStore for SqliteStore {
    async fn record(&self, e: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (account_id, at, actor, actor_kind, action, target_kind, target_id, target_label, detail, remote_addr) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(e.account_id.as_ref().map(AccountId::as_str))
        .bind(e.at)
        .bind(&e.actor)
        .bind(e.actor_kind.as_str())
        .bind(&e.action)
        .bind(&e.target_kind)
        .bind(e.target_id.as_deref())
        .bind(e.target_label.as_deref())
        .bind(e.detail.as_deref())
        .bind(e.remote_addr.as_deref())
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn audit(&self, account: &AccountId, q: &AuditQuery) -> Result<Vec<(i64, AuditEntry)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, account_id, at, actor, actor_kind, action, target_kind, target_id, target_label, detail, remote_addr \
             FROM audit_log WHERE account_id = ? AND (? IS NULL OR action = ?) AND (? IS NULL OR target_id = ?) AND (? IS NULL OR seq < ?) \
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(account.as_str())
        .bind(q.action.as_deref())
        .bind(q.action.as_deref())
        .bind(q.target_id.as_deref())
        .bind(q.target_id.as_deref())
        .bind(q.before)
        .bind(q.before)
        .bind(i64::from(q.limit.clamp(1, 500)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get("actor_kind")?;
                let account: Option<String> = row.try_get("account_id")?;
                Ok((
                    row.try_get("seq")?,
                    AuditEntry {
                        account_id: account.as_deref().map(AccountId::parse).transpose()?,
                        at: row.try_get("at")?,
                        actor: row.try_get("actor")?,
                        actor_kind: ActorKind::parse(&kind)
                            .ok_or_else(|| StoreError::Corrupt(format!("unknown actor kind {kind}")))?,
                        action: row.try_get("action")?,
                        target_kind: row.try_get("target_kind")?,
                        target_id: row.try_get("target_id")?,
                        target_label: row.try_get("target_label")?,
                        detail: row.try_get("detail")?,
                        remote_addr: row.try_get("remote_addr")?,
                    },
                ))
            })
            .collect()
    }
}
