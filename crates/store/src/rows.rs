//! What the SQLite and PostgreSQL stores share: the column lists, the mapping of rows to
//! domain values (written once, instantiated for each driver's row type), and the small
//! helpers around them. The statements themselves live with each store.

use domain::{
    Account, AccountId, AuthMethod, BundleId, BundleInfo, CacheControl, Connection, ConnectionId, ConnectionKind,
    ConnectionName, ConnectionStatus, Deployment, DeploymentId, DeploymentStatus, Environment, EnvironmentId,
    LoginHost, Millis, OrgFacts, OrgType, ResourceName, Role, System, SystemId, Target, TargetStatus, User, UserId,
};

use crate::StoreError;
use crate::connections::TableRow;

pub(crate) const COLUMNS: &str = "id, account_id, legacy, name, system_id, environment_id, active, org_type, login_host, auth_method, consumer_key, \
    jwt_username, org_id, org_name, instance_url, sf_user_id, sf_username, sf_email, status, status_detail, status_checked_at, \
    created_at, created_by, modified_at, modified_by";

pub(crate) const DEPLOYMENT_COLUMNS: &str = "d.id, d.account_id, d.system_id, d.environment_id, d.bundle_id, d.resource_name, \
    d.cache_control, d.status, d.created_at, d.created_by, d.finished_at, d.redeploy_of";
pub(crate) const TARGET_COLUMNS: &str = "t.deployment_id, t.connection_id, t.status, t.attempts, t.action, t.resource_id, t.url, \
    t.error, t.updated_at, c.org_name, c.instance_url";

/// Instance URLs are stored without a trailing slash, however they arrive (a parsed `Url`
/// adds one), so every reader sees one spelling.
pub(crate) fn instance(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// One export chunk: the database's JSON array of [`ChunkRow`]s.
pub(crate) fn parse_chunk(text: &str) -> Result<Vec<TableRow>, StoreError> {
    let rows: Vec<ChunkRow> =
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("export chunk: {e}")))?;
    Ok(rows
        .into_iter()
        .map(|r| TableRow {
            id: r.0,
            legacy: r.1 != 0,
            org_type: r.2,
            org_name: r.3,
            created_at: r.4,
            created_by: r.5,
            modified_at: r.6,
            modified_by: r.7,
            status: r.8,
            active: r.9 != 0,
        })
        .collect())
}

pub(crate) fn search_text(c: &Connection) -> String {
    let org = c.org.as_ref().map(|o| o.org_name.as_str()).unwrap_or_default();
    format!("{} {} {}", org, c.created_by.as_deref().unwrap_or_default(), c.modified_by.as_deref().unwrap_or_default())
        .to_lowercase()
}

pub(crate) fn conflict(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            if db.message().contains("name") {
                StoreError::Conflict("a connection with this name already exists".into())
            } else {
                StoreError::Conflict("this system and environment already have a connector".into())
            }
        }
        _ => StoreError::Database(e),
    }
}

pub(crate) fn auth_columns(auth: &AuthMethod) -> (&'static str, &str, Option<&str>) {
    match auth {
        AuthMethod::OAuth { consumer_key } => ("oauth", consumer_key, None),
        AuthMethod::Jwt { consumer_key, username } => ("jwt", consumer_key, Some(username)),
        AuthMethod::ClientCredentials { consumer_key } => ("client_credentials", consumer_key, None),
    }
}

pub(crate) fn kind_columns(kind: &ConnectionKind) -> (i64, Option<&str>, Option<&str>, Option<&str>, i64) {
    match kind {
        ConnectionKind::New { name } => (0, Some(name.as_str()), None, None, 1),
        ConnectionKind::Legacy { system_id, environment_id, active } => {
            (1, None, Some(system_id.as_str()), Some(environment_id.as_str()), i64::from(*active))
        }
    }
}

pub(crate) fn org_type(t: OrgType) -> &'static str {
    match t {
        OrgType::Production => "production",
        OrgType::Sandbox => "sandbox",
    }
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
pub(crate) fn like_pattern(search: &str) -> String {
    let mut out = String::from("%");
    for c in search.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// One connection in an export chunk: the JSON array the database builds, in `table_chunks`' order.
pub(crate) type ChunkRow =
    (String, i64, String, Option<String>, Millis, Option<String>, Millis, Option<String>, String, i64);

pub(crate) fn unique(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("this account already has {what} with that name"))
        }
        _ => StoreError::Database(e),
    }
}

/// A secret sealed for one connection's column (the binding ties it to both), as stored.
pub(crate) fn seal_field(
    keys: &vault::Keyring,
    id: &ConnectionId,
    field: &str,
    value: Option<&str>,
) -> Result<Option<String>, StoreError> {
    value
        .map(|v| keys.seal_str(v, vault::Binding::new(id.as_str(), field)).map(|s| s.as_stored().to_string()))
        .transpose()
        .map_err(Into::into)
}

/// A stored secret of one connection's column, opened.
pub(crate) fn open_field(
    keys: &vault::Keyring,
    id: &ConnectionId,
    field: &str,
    value: Option<String>,
) -> Result<Option<zeroize::Zeroizing<String>>, StoreError> {
    value
        .map(|v| keys.open_string(&vault::Sealed::from_stored(v), vault::Binding::new(id.as_str(), field)))
        .transpose()
        .map_err(Into::into)
}

/// The row mappers, one source for both drivers' row types.
macro_rules! row_mappers {
    ($module:ident, $row:ty) => {
        pub(crate) mod $module {
            use sqlx::Row as _;

            use super::*;

            type Row = $row;

            pub(crate) fn row_to_connection(row: &Row) -> Result<Connection, StoreError> {
                let text = |col: &str| -> Result<String, StoreError> {
                    row.try_get::<String, _>(col).map_err(StoreError::from)
                };
                let opt = |col: &str| -> Result<Option<String>, StoreError> {
                    row.try_get::<Option<String>, _>(col).map_err(StoreError::from)
                };
                let id = ConnectionId::parse(&text("id")?)?;
                let kind = if row.try_get::<i64, _>("legacy")? == 1 {
                    ConnectionKind::Legacy {
                        system_id: SystemId::parse(&opt("system_id")?.unwrap_or_default())?,
                        environment_id: EnvironmentId::parse(&opt("environment_id")?.unwrap_or_default())?,
                        active: row.try_get::<i64, _>("active")? == 1,
                    }
                } else {
                    ConnectionKind::New { name: ConnectionName::parse(&opt("name")?.unwrap_or_default())? }
                };
                let consumer_key = text("consumer_key")?;
                let auth = match text("auth_method")?.as_str() {
                    "oauth" => AuthMethod::OAuth { consumer_key },
                    "jwt" => AuthMethod::Jwt { consumer_key, username: opt("jwt_username")?.unwrap_or_default() },
                    "client_credentials" => AuthMethod::ClientCredentials { consumer_key },
                    other => return Err(StoreError::Corrupt(format!("unknown auth method {other}"))),
                };
                let org = match (
                    opt("org_id")?,
                    opt("org_name")?,
                    opt("instance_url")?,
                    opt("sf_user_id")?,
                    opt("sf_username")?,
                ) {
                    (Some(org_id), Some(org_name), Some(instance_url), Some(user_id), Some(username)) => {
                        Some(OrgFacts { org_id, org_name, instance_url, user_id, username, email: opt("sf_email")? })
                    }
                    _ => None,
                };
                Ok(Connection {
                    id,
                    account_id: AccountId::parse(&text("account_id")?)?,
                    kind,
                    org_type: if text("org_type")? == "sandbox" { OrgType::Sandbox } else { OrgType::Production },
                    login_host: LoginHost::parse(&text("login_host")?)?,
                    auth,
                    org,
                    status: ConnectionStatus::parse(&text("status")?)
                        .ok_or_else(|| StoreError::Corrupt("unknown status".into()))?,
                    status_detail: opt("status_detail")?,
                    status_checked_at: row.try_get("status_checked_at")?,
                    created_at: row.try_get("created_at")?,
                    created_by: opt("created_by")?,
                    modified_at: row.try_get("modified_at")?,
                    modified_by: opt("modified_by")?,
                })
            }

            pub(crate) fn row_to_user(row: &Row) -> Result<User, StoreError> {
                let account: Option<String> = row.try_get("account_id")?;
                let role: String = row.try_get("role")?;
                Ok(User {
                    id: UserId::parse(&row.try_get::<String, _>("id")?)?,
                    account_id: account.as_deref().map(AccountId::parse).transpose()?,
                    email: row.try_get("email")?,
                    name: row.try_get("name")?,
                    role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role}")))?,
                })
            }

            pub(crate) fn row_to_account(row: &Row) -> Result<Account, StoreError> {
                Ok(Account {
                    id: AccountId::parse(&row.try_get::<String, _>("id")?)?,
                    name: row.try_get("name")?,
                    connectors_enabled: row.try_get::<i64, _>("connectors_enabled")? == 1,
                    created_at: row.try_get("created_at")?,
                })
            }

            pub(crate) fn row_to_system(row: &Row) -> Result<System, StoreError> {
                Ok(System {
                    id: SystemId::parse(&row.try_get::<String, _>("id")?)?,
                    account_id: AccountId::parse(&row.try_get::<String, _>("account_id")?)?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                })
            }

            pub(crate) fn row_to_environment(row: &Row) -> Result<Environment, StoreError> {
                Ok(Environment {
                    id: EnvironmentId::parse(&row.try_get::<String, _>("id")?)?,
                    account_id: AccountId::parse(&row.try_get::<String, _>("account_id")?)?,
                    name: row.try_get("name")?,
                    built_in: row.try_get::<i64, _>("built_in")? == 1,
                    position: row.try_get("position")?,
                })
            }

            pub(crate) fn row_to_bundle(row: &Row) -> Result<BundleInfo, StoreError> {
                let files: String = row.try_get("files")?;
                Ok(BundleInfo {
                    id: BundleId::parse(&row.try_get::<String, _>("id")?)?,
                    account_id: AccountId::parse(&row.try_get::<String, _>("account_id")?)?,
                    sha256: row.try_get("sha256")?,
                    size: row.try_get::<i64, _>("size")? as u64,
                    files: files.split('\n').filter(|f| !f.is_empty()).map(str::to_string).collect(),
                    created_at: row.try_get("created_at")?,
                    created_by: row.try_get("created_by")?,
                })
            }

            pub(crate) fn row_to_deployment(row: &Row) -> Result<Deployment, StoreError> {
                let status: String = row.try_get("status")?;
                let cache: String = row.try_get("cache_control")?;
                let redeploy: Option<String> = row.try_get("redeploy_of")?;
                Ok(Deployment {
                    id: DeploymentId::parse(&row.try_get::<String, _>("id")?)?,
                    account_id: AccountId::parse(&row.try_get::<String, _>("account_id")?)?,
                    system_id: SystemId::parse(&row.try_get::<String, _>("system_id")?)?,
                    environment_id: EnvironmentId::parse(&row.try_get::<String, _>("environment_id")?)?,
                    bundle_id: BundleId::parse(&row.try_get::<String, _>("bundle_id")?)?,
                    resource_name: ResourceName::parse(&row.try_get::<String, _>("resource_name")?)?,
                    cache_control: CacheControl::parse(&cache)
                        .ok_or_else(|| StoreError::Corrupt(format!("cache control {cache}")))?,
                    status: DeploymentStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?,
                    created_at: row.try_get("created_at")?,
                    created_by: row.try_get("created_by")?,
                    finished_at: row.try_get("finished_at")?,
                    redeploy_of: redeploy.as_deref().map(DeploymentId::parse).transpose()?,
                })
            }

            pub(crate) fn row_to_target(row: &Row) -> Result<Target, StoreError> {
                let status: String = row.try_get("status")?;
                Ok(Target {
                    deployment_id: DeploymentId::parse(&row.try_get::<String, _>("deployment_id")?)?,
                    connection_id: ConnectionId::parse(&row.try_get::<String, _>("connection_id")?)?,
                    status: TargetStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("target status {status}")))?,
                    attempts: row.try_get::<i64, _>("attempts")? as u32,
                    action: row.try_get("action")?,
                    resource_id: row.try_get("resource_id")?,
                    url: row.try_get("url")?,
                    error: row.try_get("error")?,
                    updated_at: row.try_get("updated_at")?,
                    org_name: row.try_get("org_name")?,
                    instance_url: row.try_get("instance_url")?,
                })
            }
        }
    };
}

row_mappers!(sqlite, sqlx::sqlite::SqliteRow);
row_mappers!(postgres, sqlx::postgres::PgRow);
