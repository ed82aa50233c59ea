//! Seeding shared by the server's benchmarks: `rows` new connections in one account, eight
//! writers at once, with org names `Org 000042 Inc` and emails `admin42@org42.example`; every
//! third a sandbox, one in twenty Logged out and one in twenty Not available; on SQLite each
//! writer commits a thousand rows at a time.

use std::sync::Arc;

use domain::{
    AccountId, AuthMethod, Connection, ConnectionId, ConnectionKind, ConnectionName, ConnectionStatus, LoginHost,
    OrgFacts, OrgType,
};
use store::{NewSecrets, SqliteStore, Store, StoreError, Tx};

/// A store the seed can open transactions on.
pub trait Begin: Send + Sync + 'static {
    fn begin_tx(&self) -> impl Future<Output = Result<Tx, StoreError>> + Send;
    /// Rows each writer commits at once (one row per statement, as the store inserts them):
    /// a thousand on SQLite (one writer: a commit each row is what costs); one on PostgreSQL,
    /// where every insert of an account updates its counters, so long transactions would make
    /// the eight writers wait on each other.
    fn rows_per_commit(&self) -> usize;
}

impl Begin for Store {
    async fn begin_tx(&self) -> Result<Tx, StoreError> {
        self.begin().await
    }
    fn rows_per_commit(&self) -> usize {
        match self {
            Store::Sqlite(_) => 1000,
            Store::Postgres(_) => 1,
        }
    }
}

impl Begin for SqliteStore {
    async fn begin_tx(&self) -> Result<Tx, StoreError> {
        self.begin().await
    }
    fn rows_per_commit(&self) -> usize {
        1000
    }
}

pub async fn connections<S: Begin>(store: &Arc<S>, account: &AccountId, rows: usize) {
    let chunk = rows.div_ceil(8);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (store, account) = (store.clone(), account.clone());
        tasks.push(tokio::spawn(async move {
            let mut tx: Option<Tx> = None;
            for (n, i) in (worker * chunk..((worker + 1) * chunk).min(rows)).enumerate() {
                let email = format!("admin{i}@org{}.example", i % 5000);
                let c = Connection {
                    id: ConnectionId::generate(),
                    account_id: account.clone(),
                    kind: ConnectionKind::New {
                        name: ConnectionName::parse(&format!("connection {i}")).expect("name"),
                    },
                    org_type: if i % 3 == 0 { OrgType::Sandbox } else { OrgType::Production },
                    login_host: LoginHost::Login,
                    auth: AuthMethod::OAuth { consumer_key: "k".into() },
                    org: Some(OrgFacts {
                        org_id: "00D000000000001AAA".into(),
                        org_name: format!("Org {i:06} Inc"),
                        instance_url: "https://x.my.salesforce.com".into(),
                        user_id: "005000000000001AAA".into(),
                        username: email.clone(),
                        email: Some(email.clone()),
                    }),
                    // One in twenty Logged out and one in twenty Not available, so the table's
                    // health filter (#16) has something to find.
                    status: match i % 20 {
                        0 => ConnectionStatus::LoggedOut,
                        1 => ConnectionStatus::NotAvailable,
                        _ => ConnectionStatus::LoggedIn,
                    },
                    status_detail: None,
                    status_reason: None,
                    granted_at: None,
                    status_checked_at: Some(i as i64),
                    created_at: 1_764_000_000_000 + i as i64 * 1000,
                    created_by: Some(email.clone()),
                    modified_at: 1_764_000_000_000 + i as i64 * 1000,
                    modified_by: Some(email),
                };
                if tx.is_none() {
                    tx = Some(store.begin_tx().await.expect("begin"));
                }
                let open = tx.as_mut().expect("open");
                open.insert_connection(&c, &NewSecrets::default()).await.expect("insert");
                if (n + 1) % store.rows_per_commit() == 0 {
                    tx.take().expect("open").commit().await.expect("commit");
                }
            }
            if let Some(tx) = tx {
                tx.commit().await.expect("commit");
            }
        }));
    }
    for t in tasks {
        t.await.expect("seed");
    }
}
