//! What the SQLite and PostgreSQL stores share: the column lists, the mapping of rows to
//! domain values (written once, instantiated for each driver's row type), and the small
//! helpers around them. The statements themselves live with each store.

use domain::{
    Account, AccountId, AuthMethod, Baseline, BundleId, BundleInfo, CacheControl, Connection, ConnectionId,
    ConnectionKind, ConnectionName, ConnectionStatus, Deployment, DeploymentId, DeploymentStatus, Environment,
    EnvironmentId, LoginHost, Millis, OrgFacts, OrgType, ResourceName, Role, System, SystemId, Target, TargetStatus,
    User, UserId,
};

use crate::StoreError;
use crate::connections::TableRow;

pub(crate) const COLUMNS: &str = "id, account_id, legacy, name, system_id, environment_id, active, org_type, login_host, auth_method, consumer_key, \
    jwt_username, org_id, org_name, instance_url, sf_user_id, sf_username, sf_email, status, status_detail, status_reason, granted_at, status_checked_at, \
    created_at, created_by, modified_at, modified_by";

pub(crate) const DEPLOYMENT_COLUMNS: &str = "d.id, d.account_id, d.system_id, d.environment_id, d.bundle_id, d.resource_name, \
    d.cache_control, d.status, d.created_at, d.created_by, d.finished_at, d.redeploy_of, d.with_loader, d.rollout, d.wave, d.note, d.overwrite_drift";
/// Finishes a deployment none of whose targets is left to run (pending, running, held or
/// drifted — a drifted target waits for a person):
/// failed if any target failed, else succeeded. Binds: now, then the deployment's id three times.
pub(crate) const FINISH_WHEN_DONE: &str = "UPDATE deployments SET finished_at = ?, status = CASE WHEN EXISTS \
    (SELECT 1 FROM deployment_targets WHERE deployment_id = ? AND status = 'failed') THEN 'failed' ELSE 'succeeded' END \
    WHERE id = ? AND finished_at IS NULL AND NOT EXISTS \
    (SELECT 1 FROM deployment_targets WHERE deployment_id = ? AND status IN ('pending', 'running', 'held', 'drifted'))";
pub(crate) const TARGET_COLUMNS: &str = "t.deployment_id, t.connection_id, t.status, t.attempts, t.action, t.resource_id, t.url, \
    t.error, t.loader, t.updated_at, c.org_name, c.instance_url, c.name AS connection_name, c.sf_username, t.wave, t.deferred_since, \
    t.drift_by, t.drift_at, t.overwrite";
pub(crate) const BASELINE_COLUMNS: &str = "account_id, org_id, resource_name, sha256, content_type, cache_control, body_length, \
    modstamp_ms, resource_id, connection_id, deployment_id, published_at, drift, scanned_at";

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

/// `NotFound` when a statement changed no row (the id was not there, or not in the account).
pub(crate) fn one_or_not_found(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 { Err(StoreError::NotFound) } else { Ok(()) }
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

/// Rows as the database returns them, read by column name with `sqlx::FromRow` (one
/// derive serves both drivers' row types), then checked into domain values. A value the
/// domain refuses is `Corrupt`, never a panic.
#[derive(sqlx::FromRow)]
pub(crate) struct ConnectionRow {
    id: String,
    account_id: String,
    legacy: i64,
    name: Option<String>,
    system_id: Option<String>,
    environment_id: Option<String>,
    active: i64,
    org_type: String,
    login_host: String,
    auth_method: String,
    consumer_key: String,
    jwt_username: Option<String>,
    org_id: Option<String>,
    org_name: Option<String>,
    instance_url: Option<String>,
    sf_user_id: Option<String>,
    sf_username: Option<String>,
    sf_email: Option<String>,
    status: String,
    status_detail: Option<String>,
    status_reason: Option<String>,
    granted_at: Option<Millis>,
    status_checked_at: Option<Millis>,
    created_at: Millis,
    created_by: Option<String>,
    modified_at: Millis,
    modified_by: Option<String>,
}

impl TryFrom<ConnectionRow> for Connection {
    type Error = StoreError;

    fn try_from(r: ConnectionRow) -> Result<Self, StoreError> {
        let kind = if r.legacy == 1 {
            ConnectionKind::Legacy {
                system_id: SystemId::parse(r.system_id.as_deref().unwrap_or_default())?,
                environment_id: EnvironmentId::parse(r.environment_id.as_deref().unwrap_or_default())?,
                active: r.active == 1,
            }
        } else {
            ConnectionKind::New { name: ConnectionName::parse(r.name.as_deref().unwrap_or_default())? }
        };
        let consumer_key = r.consumer_key;
        let auth = match r.auth_method.as_str() {
            "oauth" => AuthMethod::OAuth { consumer_key },
            "jwt" => AuthMethod::Jwt { consumer_key, username: r.jwt_username.unwrap_or_default() },
            "client_credentials" => AuthMethod::ClientCredentials { consumer_key },
            other => return Err(StoreError::Corrupt(format!("unknown auth method {other}"))),
        };
        let org = match (r.org_id, r.org_name, r.instance_url, r.sf_user_id, r.sf_username) {
            (Some(org_id), Some(org_name), Some(instance_url), Some(user_id), Some(username)) => {
                Some(OrgFacts { org_id, org_name, instance_url, user_id, username, email: r.sf_email })
            }
            _ => None,
        };
        Ok(Connection {
            id: ConnectionId::parse(&r.id)?,
            account_id: AccountId::parse(&r.account_id)?,
            kind,
            org_type: if r.org_type == "sandbox" { OrgType::Sandbox } else { OrgType::Production },
            login_host: LoginHost::parse(&r.login_host)?,
            auth,
            org,
            status: ConnectionStatus::parse(&r.status).ok_or_else(|| StoreError::Corrupt("unknown status".into()))?,
            status_detail: r.status_detail,
            status_reason: r.status_reason.as_deref().and_then(domain::StatusReason::parse),
            granted_at: r.granted_at,
            status_checked_at: r.status_checked_at,
            created_at: r.created_at,
            created_by: r.created_by,
            modified_at: r.modified_at,
            modified_by: r.modified_by,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    account_id: Option<String>,
    email: String,
    name: String,
    role: String,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: UserId::parse(&r.id)?,
            account_id: r.account_id.as_deref().map(AccountId::parse).transpose()?,
            email: r.email,
            name: r.name,
            role: Role::parse(&r.role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {}", r.role)))?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    id: String,
    name: String,
    connectors_enabled: i64,
    two_factor_required: i64,
    created_at: Millis,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;

    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        Ok(Account {
            id: AccountId::parse(&r.id)?,
            name: r.name,
            connectors_enabled: r.connectors_enabled == 1,
            two_factor_required: r.two_factor_required == 1,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SystemRow {
    id: String,
    account_id: String,
    name: String,
    created_at: Millis,
}

impl TryFrom<SystemRow> for System {
    type Error = StoreError;

    fn try_from(r: SystemRow) -> Result<Self, StoreError> {
        Ok(System {
            id: SystemId::parse(&r.id)?,
            account_id: AccountId::parse(&r.account_id)?,
            name: r.name,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EnvironmentRow {
    id: String,
    account_id: String,
    name: String,
    built_in: i64,
    position: i64,
}

impl TryFrom<EnvironmentRow> for Environment {
    type Error = StoreError;

    fn try_from(r: EnvironmentRow) -> Result<Self, StoreError> {
        Ok(Environment {
            id: EnvironmentId::parse(&r.id)?,
            account_id: AccountId::parse(&r.account_id)?,
            name: r.name,
            built_in: r.built_in == 1,
            position: r.position,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct BundleRow {
    id: String,
    account_id: String,
    sha256: String,
    size: i64,
    /// One path per line.
    files: String,
    created_at: Millis,
    created_by: String,
}

impl TryFrom<BundleRow> for BundleInfo {
    type Error = StoreError;

    fn try_from(r: BundleRow) -> Result<Self, StoreError> {
        Ok(BundleInfo {
            id: BundleId::parse(&r.id)?,
            account_id: AccountId::parse(&r.account_id)?,
            sha256: r.sha256,
            size: r.size as u64,
            files: r.files.split('\n').filter(|f| !f.is_empty()).map(str::to_string).collect(),
            created_at: r.created_at,
            created_by: r.created_by,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeploymentRow {
    id: String,
    account_id: String,
    system_id: String,
    environment_id: String,
    bundle_id: String,
    resource_name: String,
    cache_control: String,
    status: String,
    created_at: Millis,
    created_by: String,
    finished_at: Option<Millis>,
    redeploy_of: Option<String>,
    with_loader: i64,
    rollout: Option<String>,
    wave: i64,
    note: Option<String>,
    overwrite_drift: i64,
}

impl TryFrom<DeploymentRow> for Deployment {
    type Error = StoreError;

    fn try_from(r: DeploymentRow) -> Result<Self, StoreError> {
        Ok(Deployment {
            id: DeploymentId::parse(&r.id)?,
            account_id: AccountId::parse(&r.account_id)?,
            system_id: SystemId::parse(&r.system_id)?,
            environment_id: EnvironmentId::parse(&r.environment_id)?,
            bundle_id: BundleId::parse(&r.bundle_id)?,
            resource_name: ResourceName::parse(&r.resource_name)?,
            cache_control: CacheControl::parse(&r.cache_control)
                .ok_or_else(|| StoreError::Corrupt(format!("cache control {}", r.cache_control)))?,
            status: DeploymentStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Corrupt(format!("status {}", r.status)))?,
            created_at: r.created_at,
            created_by: r.created_by,
            finished_at: r.finished_at,
            redeploy_of: r.redeploy_of.as_deref().map(DeploymentId::parse).transpose()?,
            with_loader: r.with_loader != 0,
            rollout: r
                .rollout
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("rollout: {e}")))?,
            wave: r.wave as u32,
            note: r.note,
            overwrite_drift: r.overwrite_drift != 0,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TargetRow {
    deployment_id: String,
    connection_id: String,
    status: String,
    attempts: i64,
    action: Option<String>,
    resource_id: Option<String>,
    url: Option<String>,
    error: Option<String>,
    loader: Option<String>,
    updated_at: Millis,
    org_name: Option<String>,
    instance_url: Option<String>,
    connection_name: Option<String>,
    sf_username: Option<String>,
    wave: i64,
    deferred_since: Option<Millis>,
    drift_by: Option<String>,
    drift_at: Option<Millis>,
    overwrite: i64,
}

impl TryFrom<TargetRow> for Target {
    type Error = StoreError;

    fn try_from(r: TargetRow) -> Result<Self, StoreError> {
        Ok(Target {
            deployment_id: DeploymentId::parse(&r.deployment_id)?,
            connection_id: ConnectionId::parse(&r.connection_id)?,
            status: TargetStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Corrupt(format!("target status {}", r.status)))?,
            attempts: r.attempts as u32,
            action: r.action,
            resource_id: r.resource_id,
            url: r.url,
            error: r.error,
            loader: r.loader,
            updated_at: r.updated_at,
            org_name: r.org_name,
            instance_url: r.instance_url,
            connection_name: r.connection_name,
            username: r.sf_username,
            wave: r.wave as u32,
            deferred_since: r.deferred_since,
            drift_by: r.drift_by,
            drift_at: r.drift_at,
            overwrite: r.overwrite != 0,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct BaselineRow {
    account_id: String,
    org_id: String,
    resource_name: String,
    sha256: String,
    content_type: String,
    cache_control: String,
    body_length: i64,
    modstamp_ms: Millis,
    resource_id: String,
    connection_id: String,
    deployment_id: String,
    published_at: Millis,
    drift: Option<String>,
    scanned_at: Option<Millis>,
}

impl TryFrom<BaselineRow> for Baseline {
    type Error = StoreError;

    fn try_from(r: BaselineRow) -> Result<Self, StoreError> {
        Ok(Baseline {
            account_id: AccountId::parse(&r.account_id)?,
            org_id: r.org_id,
            resource_name: ResourceName::parse(&r.resource_name)?,
            sha256: r.sha256,
            content_type: r.content_type,
            cache_control: r.cache_control,
            body_length: r.body_length as u64,
            modstamp_ms: r.modstamp_ms,
            resource_id: r.resource_id,
            connection_id: ConnectionId::parse(&r.connection_id)?,
            deployment_id: DeploymentId::parse(&r.deployment_id)?,
            published_at: r.published_at,
            drift: r
                .drift
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| StoreError::Corrupt(format!("drift: {e}")))?,
            scanned_at: r.scanned_at,
        })
    }
}

/// Reads a row of either driver as `Raw` and checks it into the domain value `T`.
fn mapped<'r, R, Raw, T>(row: &'r R) -> Result<T, StoreError>
where
    R: sqlx::Row,
    Raw: sqlx::FromRow<'r, R>,
    T: TryFrom<Raw, Error = StoreError>,
{
    T::try_from(Raw::from_row(row)?)
}

/// The row mappers the stores call, one per domain value, for either driver's rows.
macro_rules! mappers {
    ($($name:ident: $raw:ty => $domain:ty;)*) => {
        $(
            pub(crate) fn $name<'r, R: sqlx::Row>(row: &'r R) -> Result<$domain, StoreError>
            where
                $raw: sqlx::FromRow<'r, R>,
            {
                mapped::<R, $raw, $domain>(row)
            }
        )*
    };
}

mappers! {
    row_to_connection: ConnectionRow => Connection;
    row_to_user: UserRow => User;
    row_to_account: AccountRow => Account;
    row_to_system: SystemRow => System;
    row_to_environment: EnvironmentRow => Environment;
    row_to_bundle: BundleRow => BundleInfo;
    row_to_deployment: DeploymentRow => Deployment;
    row_to_target: TargetRow => Target;
    row_to_baseline: BaselineRow => Baseline;
}

/// An invitation row (id, account_id, account name, email, role, invited_by, created_at, expires_at).
pub(crate) fn invitation_of<R: sqlx::Row>(row: &R) -> Result<crate::access::Invitation, StoreError>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let role: String = row.try_get(4)?;
    Ok(crate::access::Invitation {
        id: row.try_get(0)?,
        account: AccountId::parse(&row.try_get::<String, _>(1)?)?,
        email: row.try_get(3)?,
        role: Role::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("unknown role {role}")))?,
        invited_by: row.try_get(5)?,
        created_at: row.try_get(6)?,
        expires_at: row.try_get(7)?,
    })
}
