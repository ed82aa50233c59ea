//! The connection store: rows for the table (F6), search (F7), and sealed secrets.

use domain::{AccountId, Connection, ConnectionId, ConnectionStatus, Millis, OrgType, StatusReason, SystemId};
use vault::{AccessToken, ClientSecret, JwtPrivateKey, RefreshToken};

use crate::StoreError;

/// Secrets given when a connection is created or edited (`None` keeps what is stored).
#[derive(Debug, Default, Clone)]
pub struct NewSecrets {
    pub consumer_secret: Option<ClientSecret>,
    pub private_key: Option<JwtPrivateKey>,
    pub tokens: Option<TokenSet>,
}

/// Tokens from a sign-in or refresh.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: AccessToken,
    /// `None` keeps the stored refresh token (no rotation, or a grant without one).
    pub refresh_token: Option<RefreshToken>,
    pub instance_url: String,
}

/// A connection's secrets, opened, with the version of its tokens.
#[derive(Debug, Clone)]
pub struct ConnectionSecrets {
    pub consumer_secret: Option<ClientSecret>,
    pub private_key: Option<JwtPrivateKey>,
    pub access_token: Option<AccessToken>,
    pub refresh_token: Option<RefreshToken>,
    /// Where the tokens are used (the newest `instance_url` Salesforce gave).
    pub instance_url: Option<String>,
    pub token_version: i64,
}

/// A column of the table to sort by (#16: every one of F6's nine). Ties are broken by id, so
/// every order is total and keyset paging never skips or repeats a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    ConnectionId,
    Environment,
    AccountName,
    #[default]
    CreatedAt,
    CreatedBy,
    ModifiedAt,
    ModifiedBy,
    Status,
    Activity,
}

impl SortKey {
    /// The ORDER BY expression; `text` is the database's case-insensitive order of a text
    /// column that may be NULL (NULL sorts as the empty text on both databases).
    pub(crate) fn expr(self, text: fn(&str) -> String) -> String {
        match self {
            SortKey::ConnectionId => "id".into(),
            // `production` < `sandbox`, as their labels.
            SortKey::Environment => "org_type".into(),
            SortKey::AccountName => text("org_name"),
            SortKey::CreatedAt => "created_at".into(),
            SortKey::CreatedBy => text("created_by"),
            SortKey::ModifiedAt => "modified_at".into(),
            SortKey::ModifiedBy => text("modified_by"),
            // `logged_in` < `logged_out` < `not_available`, as their labels.
            SortKey::Status => "status".into(),
            // Active before Inactive, as their labels.
            SortKey::Activity => "(1 - active)".into(),
        }
    }
}

/// How a connection signs in, as a filter of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    OAuth,
    Jwt,
    ClientCredentials,
}

impl AuthKind {
    /// The stored `auth_method`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::OAuth => "oauth",
            AuthKind::Jwt => "jwt",
            AuthKind::ClientCredentials => "client_credentials",
        }
    }
}

/// The table's filters (#16); each one left `None` lets every row through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Filters {
    pub status: Option<ConnectionStatus>,
    pub org_type: Option<OrgType>,
    /// `Some(true)`: legacy connectors only; `Some(false)`: new connections only.
    pub legacy: Option<bool>,
    pub auth: Option<AuthKind>,
}

impl Filters {
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }

    /// The filters as SQL conditions, each ` AND …`. Every value is one of an enum's constants,
    /// never the caller's text. `not_logged_in` is added beside the Logged out or Not available
    /// filter (the database's hint for its partial indexes, if it needs one).
    pub(crate) fn sql(&self, not_logged_in: &str) -> String {
        let mut out = String::new();
        if let Some(legacy) = self.legacy {
            out.push_str(if legacy { " AND legacy = 1" } else { " AND legacy = 0" });
        }
        if let Some(status) = self.status {
            out.push_str(&format!(" AND status = '{}'", status.as_str()));
            if status != ConnectionStatus::LoggedIn {
                out.push_str(not_logged_in);
            }
        }
        if let Some(t) = self.org_type {
            out.push_str(&format!(" AND org_type = '{}'", crate::rows::org_type(t)));
        }
        if let Some(auth) = self.auth {
            out.push_str(&format!(" AND auth_method = '{}'", auth.as_str()));
        }
        out
    }
}

/// Where a keyset page starts (#16): beside a row of the table in the query's order, or at
/// its end. A row that is gone (or another account's) gives an empty page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The rows after this one.
    After(ConnectionId),
    /// The rows before this one (the page that ends just before it).
    Before(ConnectionId),
    /// This row and the ones after it.
    From(ConnectionId),
    /// The last page.
    Last,
}

/// F6/F7: a page of the table, optionally searched (case-insensitive substring of the org
/// name or the created-by / last-modified-by emails) and filtered.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub search: Option<String>,
    pub filters: Filters,
    pub sort: SortKey,
    pub descending: bool,
    /// Rows to skip (without a cursor) and rows to return (at most 500).
    pub offset: u32,
    pub limit: u32,
    /// Keyset paging: where the page starts (`offset` is then not used).
    pub cursor: Option<Cursor>,
    /// With an `After` or `Before` cursor: how many matching rows come before the page, as the
    /// link that led here knew it (the page before's position plus its rows); none: counted.
    /// Only shown, never trusted for access.
    pub position: Option<u64>,
}

/// A table query's SQL parts, as each database spells them.
pub(crate) struct Clauses {
    /// The WHERE condition: `account_id = ?`, then the search's `?`s if any, then the filters.
    pub filter: String,
    /// The search's bound values, in the order of their `?`s.
    pub search: Vec<String>,
    /// A short search (1–2 characters, matched by prefix): its count stops at
    /// [`SHORT_SEARCH_CAP`].
    pub capped: bool,
    /// A short search's range on each prefix column (two `?`s each: the bounds), which `list`
    /// also runs one by one — each on its own index — to count the matches, and when there are
    /// few, to find them (the table's sort order then sorts a thousand rows at most, instead
    /// of walking its index through rows none of which match).
    pub prefix_ranges: Vec<String>,
    /// The sort column's expression.
    pub sort: String,
    /// ORDER BY in the query's order, and reversed.
    pub order: String,
    pub reversed: String,
}

impl Clauses {
    pub(crate) fn new(
        q: &ListQuery,
        filter: &str,
        search: Vec<String>,
        text: fn(&str) -> String,
        not_logged_in: &str,
    ) -> Clauses {
        let sort = q.sort.expr(text);
        let by = |desc: bool| {
            let direction = if desc { "DESC" } else { "ASC" };
            format!("{sort} {direction}, id {direction}")
        };
        Clauses {
            filter: format!("{filter}{}", q.filters.sql(not_logged_in)),
            capped: q.search_term().is_some_and(|t| is_short(&t)),
            prefix_ranges: Vec::new(),
            search,
            order: by(q.descending),
            reversed: by(!q.descending),
            sort,
        }
    }
}

/// How far a short search counts its matches (the page says "1,000+").
pub const SHORT_SEARCH_CAP: u64 = 1000;

/// Searches shorter than this many characters match the start of the org's name or of an
/// email (an indexed range), not any substring: a one-letter substring matches most rows and no
/// index serves it.
pub const SUBSTRING_SEARCH_FROM: usize = 3;

pub(crate) fn is_short(term: &str) -> bool {
    term.chars().count() < SUBSTRING_SEARCH_FROM
}

/// The columns a short search matches by prefix: the org's name and the two emails.
pub(crate) const PREFIX_COLUMNS: [&str; 3] = ["org_name", "created_by", "modified_by"];

/// A short search's bounds, for each prefix column: from the term, to the term followed by
/// the last code point (every text starting with the term sorts between them, byte-wise).
pub(crate) fn prefix_bounds(term: &str) -> Vec<String> {
    let upper = format!("{term}{}", char::MAX);
    PREFIX_COLUMNS.iter().flat_map(|_| [term.to_string(), upper.clone()]).collect()
}

impl ListQuery {
    /// The search as the database compares it: lower case, trimmed, without control characters
    /// (no one types them; a NUL would end SQLite's full-text query early and PostgreSQL refuses
    /// it in text); `None` when nothing is left.
    pub(crate) fn search_term(&self) -> Option<String> {
        let term: String = self.search.as_deref()?.chars().filter(|c| !c.is_control()).collect();
        Some(term.trim().to_lowercase()).filter(|t| !t.is_empty())
    }
}

/// What the table and its exports show of a connection (F6), read without the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    pub id: String,
    pub legacy: bool,
    /// `production` or `sandbox`.
    pub org_type: String,
    pub org_name: Option<String>,
    pub created_at: Millis,
    pub created_by: Option<String>,
    pub modified_at: Millis,
    pub modified_by: Option<String>,
    /// `logged_in`, `logged_out` or `not_available`.
    pub status: String,
    pub active: bool,
}

impl TableRow {
    /// The row, borrowed.
    pub fn as_ref(&self) -> TableRowRef<'_> {
        TableRowRef {
            id: &self.id,
            legacy: self.legacy,
            org_type: &self.org_type,
            org_name: self.org_name.as_deref(),
            created_at: self.created_at,
            created_by: self.created_by.as_deref(),
            modified_at: self.modified_at,
            modified_by: self.modified_by.as_deref(),
            status: &self.status,
            active: self.active,
        }
    }
}

/// A [`TableRow`] borrowed from where it was read (the CSV export writes a million of them
/// without copying a value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableRowRef<'a> {
    pub id: &'a str,
    pub legacy: bool,
    pub org_type: &'a str,
    pub org_name: Option<&'a str>,
    pub created_at: Millis,
    pub created_by: Option<&'a str>,
    pub modified_at: Millis,
    pub modified_by: Option<&'a str>,
    pub status: &'a str,
    pub active: bool,
}

/// The table's columns as exports read them, in [`TableRowRef::from_columns`]' order.
pub(crate) const TABLE_COLUMNS: &str =
    "id, legacy, org_type, org_name, created_at, created_by, modified_at, modified_by, status, active";

impl<'a> TableRowRef<'a> {
    /// A row from its [`TABLE_COLUMNS`], as a reader gives them by position: text, text that
    /// may be absent, and numbers.
    pub(crate) fn from_columns<E>(
        text: impl Fn(usize) -> Result<&'a str, E>,
        maybe: impl Fn(usize) -> Result<Option<&'a str>, E>,
        number: impl Fn(usize) -> Result<i64, E>,
    ) -> Result<Self, E> {
        Ok(TableRowRef {
            id: text(0)?,
            legacy: number(1)? != 0,
            org_type: text(2)?,
            org_name: maybe(3)?,
            created_at: number(4)?,
            created_by: maybe(5)?,
            modified_at: number(6)?,
            modified_by: maybe(7)?,
            status: text(8)?,
            active: number(9)? != 0,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<Connection>,
    /// Rows matching the search and filters.
    pub total: u64,
    /// Matching rows before this page's first (its offset, also for keyset pages).
    pub position: u64,
    /// A short search's count stopped at `total`: there are more matches.
    pub more: bool,
}

/// How far a master-key rotation is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Secrets re-sealed by this step.
    pub resealed: u64,
    /// Secrets still sealed under an old key (0: done, and the database now names the new key).
    pub remaining: u64,
}

/// What a call, a renewal or a health check showed about a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A call worked: Logged in.
    Healthy,
    /// A renewal worked: the credentials are alive, so a Logged out connection (or one Not
    /// available because Salesforce did not answer) is Logged in again and a failure streak
    /// ends; a connection whose calls Salesforce refuses stays Not available until a call works.
    Renewed,
    /// A renewal worked and Salesforce named another instance for the org (a My Domain
    /// change): as [`Observation::Renewed`], and the audit log records the move.
    Moved { from: String, to: String },
    /// Salesforce did not answer, or failed for now: the connection stays as it is until it
    /// has been failing for `grace_ms`, then it is Not available (and Logged in again by itself
    /// at the next success).
    Failing { reason: StatusReason, detail: String, grace_ms: Millis },
    /// Salesforce refused something other than the credentials: Not available now.
    Refused { reason: StatusReason, detail: String },
    /// The credentials are dead: Logged out until someone reconnects it.
    Dead { reason: StatusReason, detail: String },
}

/// A connection's status as [`ConnectionStore::observe`] left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChange {
    pub from: ConnectionStatus,
    pub to: ConnectionStatus,
    pub reason: Option<StatusReason>,
    /// The status or its reason changed (and the audit log says so).
    pub changed: bool,
}

store_trait! {
    pub trait ConnectionStore {
        /// Stores a new connection; a name or legacy slot already taken is a `Conflict`.
        fn insert(&self, connection: &Connection, secrets: &NewSecrets) -> Result<(), StoreError>;
        /// Replaces a connection's settings (and any secrets given); its status is left to
        /// [`ConnectionStore::observe`].
        fn update(&self, connection: &Connection, secrets: &NewSecrets) -> Result<(), StoreError>;
        /// A connection of this account; another account's id is `NotFound`.
        fn get(&self, account: &AccountId, id: &ConnectionId) -> Result<Connection, StoreError>;
        fn list(&self, account: &AccountId, query: &ListQuery) -> Result<Page, StoreError>;
        /// Whether a new connection's name is used in the account (any case), leaving out `except`.
        fn name_taken(&self, account: &AccountId, name: &str, except: Option<&ConnectionId>) -> Result<bool, StoreError>;
        /// The legacy connectors bound to a system (F4), one per environment at most.
        fn legacy_connectors(&self, account: &AccountId, system: &SystemId) -> Result<Vec<Connection>, StoreError>;
        fn delete(&self, account: &AccountId, id: &ConnectionId) -> Result<(), StoreError>;
        fn secrets(&self, id: &ConnectionId) -> Result<ConnectionSecrets, StoreError>;
        /// Stores new tokens if the stored ones are still at `seen_version` (returns false if
        /// another refresh got there first). The status is left to [`ConnectionStore::observe`].
        fn save_tokens(&self, id: &ConnectionId, tokens: &TokenSet, seen_version: i64, now: Millis) -> Result<bool, StoreError>;
        /// Connections of every account whose status was last checked at or before `before` (or never),
        /// oldest first, leaving out Logged out ones: what the periodic health check looks at next.
        fn due_for_check(&self, before: Millis, limit: u32) -> Result<Vec<Connection>, StoreError>;
        /// OAuth connections (not Logged out) whose tokens were last renewed at or before
        /// `before`, longest ago first: what the keep-alive renews, so an app's idle
        /// refresh-token policy never ends a connection nobody used.
        fn due_for_keep_alive(&self, before: Millis, limit: u32) -> Result<Vec<Connection>, StoreError>;
        /// When the connection's tokens were last renewed (`None`: never since it was saved).
        fn renewed_at(&self, account: &AccountId, id: &ConnectionId) -> Result<Option<Millis>, StoreError>;
        /// The account's OAuth connections through one connected app (by consumer key), oldest
        /// grant first: whose approvals a sixth sign-in of the same Salesforce user revokes.
        fn oauth_grants(&self, account: &AccountId, consumer_key: &str) -> Result<Vec<Connection>, StoreError>;
        /// The account's connections to one Salesforce org (by its org id), oldest first.
        fn connections_to_org(&self, account: &AccountId, org_id: &str) -> Result<Vec<Connection>, StoreError>;
        /// Records what a call, a renewal or a check showed about a connection: the one way a
        /// connection's status changes after it is saved (issue #14). A change of status or
        /// reason writes a `connection.status_changed` audit entry in the same transaction.
        /// `based_on` is the token version the observation was made with: a failure seen with
        /// tokens that have since been replaced (a reconnect, another instance's renewal) is
        /// ignored.
        fn observe(&self, id: &ConnectionId, observation: &Observation, based_on: Option<i64>, now: Millis) -> Result<StatusChange, StoreError>;
        /// Takes the connection's renewal lease for `owner` until `until` unless someone else's
        /// lease is still running (`now`): how instances sharing a database agree that only one
        /// of them calls the token endpoint. Returns whether `owner` holds it.
        fn take_renewal(&self, id: &ConnectionId, owner: &str, now: Millis, until: Millis) -> Result<bool, StoreError>;
        /// One step of a master-key rotation: re-seals up to `limit` stored secrets that are sealed
        /// under another key than the current one (each written only if unchanged since it was
        /// read, so a token refreshed meanwhile is kept). When none are left, records the current
        /// key as the database's key. Instances keep serving throughout.
        fn rotate_keys(&self, limit: u32) -> Result<Rotation, StoreError>;
        /// How many connections (of every account) have each status, for metrics.
        fn status_counts(&self) -> Result<Vec<(String, u64)>, StoreError>;
        /// Gives the renewal lease back (if `owner` still holds it).
        fn release_renewal(&self, id: &ConnectionId, owner: &str) -> Result<(), StoreError>;
    }
    by_hand {
        trait {
            /// Every row matching the query's search, in its order (limit and offset are
            /// ignored), read by one query and handed over as it is read: exports (F8) never
            /// hold the table in memory.
            fn stream<'a>(
                &'a self,
                account: &'a AccountId,
                query: &ListQuery,
            ) -> impl futures_util::Stream<Item = Result<Connection, StoreError>> + Send + 'a;
            /// The same rows as [`ConnectionStore::stream`], only the table's fields, in chunks
            /// of up to 2,000: exports of 100,000 rows without a round trip per row.
            fn table_chunks<'a>(
                &'a self,
                account: &'a AccountId,
                query: &ListQuery,
            ) -> impl futures_util::Stream<Item = Result<Vec<TableRow>, StoreError>> + Send + 'a;
        }
        for Store {
            fn stream<'a>(
                &'a self,
                account: &'a AccountId,
                query: &ListQuery,
            ) -> impl futures_util::Stream<Item = Result<Connection, StoreError>> + Send + 'a {
                use futures_util::StreamExt;
                match self {
                    crate::Store::Sqlite(s) => s.stream(account, query).boxed(),
                    crate::Store::Postgres(s) => s.stream(account, query).boxed(),
                }
            }

            fn table_chunks<'a>(
                &'a self,
                account: &'a AccountId,
                query: &ListQuery,
            ) -> impl futures_util::Stream<Item = Result<Vec<TableRow>, StoreError>> + Send + 'a {
                use futures_util::StreamExt;
                match self {
                    crate::Store::Sqlite(s) => s.table_chunks(account, query).boxed(),
                    crate::Store::Postgres(s) => s.table_chunks(account, query).boxed(),
                }
            }
        }
    }
}
