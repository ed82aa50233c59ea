//! The store conformance suite: written against the store traits, run on every implementation
//! — SQLite, and PostgreSQL when `LIGHTBRIDGE_TEST_POSTGRES` names a server (`.ci/run` runs
//! the suite through `scripts/with-postgres`; in CI a missing server fails the run).

use domain::{
    AccountId, AuthMethod, Connection, ConnectionId, ConnectionKind, ConnectionName, ConnectionStatus, EnvironmentId,
    LoginHost, OrgFacts, OrgType, StatusReason, SystemId,
};
use store::{
    AccessStore, AuditQuery, AuditStore, CatalogStore, ConnectionStore, DeploymentStore, Finish, ListQuery, NewSecrets,
    NotificationStore, Observation, PgStore, SortKey, SqliteStore, Store, StoreError, TargetOutcome, TokenSet,
};
use vault::{AccessToken, ClientSecret, Keyring, MasterKey, RefreshToken};

fn keys() -> Keyring {
    Keyring::new(MasterKey::from_bytes([42u8; 32]))
}

fn new_connection(account: &AccountId, name: &str, org_name: &str, email: &str, created_at: i64) -> Connection {
    Connection {
        id: ConnectionId::generate(),
        account_id: account.clone(),
        kind: ConnectionKind::New { name: ConnectionName::parse(name).expect("name") },
        org_type: OrgType::Production,
        login_host: LoginHost::Login,
        auth: AuthMethod::OAuth { consumer_key: "3MVG9key".into() },
        org: Some(OrgFacts {
            org_id: "00D5g0000012AbCEAU".into(),
            org_name: org_name.into(),
            instance_url: "https://acme.my.salesforce.com".into(),
            user_id: "0055g0000000001AAA".into(),
            username: email.into(),
            email: Some(email.into()),
        }),
        status: ConnectionStatus::LoggedIn,
        status_detail: None,
        status_reason: None,
        granted_at: None,
        status_checked_at: Some(created_at),
        created_at,
        created_by: Some(email.into()),
        modified_at: created_at,
        modified_by: Some(email.into()),
    }
}

fn tokens(access: &str, refresh: Option<&str>) -> TokenSet {
    TokenSet {
        access_token: AccessToken::new(access),
        refresh_token: refresh.map(RefreshToken::new),
        instance_url: "https://acme.my.salesforce.com".into(),
    }
}

async fn sqlite() -> (SqliteStore, AccountId, AccountId) {
    let store = SqliteStore::in_memory(keys()).await.expect("store");
    let (a, b) = (AccountId::generate(), AccountId::generate());
    store.create_account(&a, "Account A", 0).await.expect("a");
    store.create_account(&b, "Account B", 0).await.expect("b");
    (store, a, b)
}

/// The PostgreSQL server tests use, if any.
fn postgres_url() -> Option<String> {
    match std::env::var("LIGHTBRIDGE_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI must test PostgreSQL too: run the tests through scripts/with-postgres")
        }
        _ => {
            eprintln!("PostgreSQL part skipped: LIGHTBRIDGE_TEST_POSTGRES is not set (scripts/with-postgres sets it)");
            None
        }
    }
}

async fn postgres(url: &str) -> (PgStore, AccountId, AccountId) {
    let store = PgStore::scratch(url, keys()).await.expect("store");
    let (a, b) = (AccountId::generate(), AccountId::generate());
    store.create_account(&a, "Account A", 0).await.expect("a");
    store.create_account(&b, "Account B", 0).await.expect("b");
    (store, a, b)
}

async fn a_connection_round_trips_and_stays_in_its_account<S: ConnectionStore>(
    store: &S,
    a: &AccountId,
    b: &AccountId,
) {
    let c = new_connection(a, "Acme prod", "Acme Corporation", "admin@acme.example", 1);
    store.insert(&c, &NewSecrets::default()).await.expect("insert");
    assert_eq!(store.get(a, &c.id).await.expect("get"), c);
    assert!(matches!(store.get(b, &c.id).await, Err(StoreError::NotFound)), "another account's id is not found");
    assert!(matches!(store.delete(b, &c.id).await, Err(StoreError::NotFound)), "nor can it be deleted from there");
    store.delete(a, &c.id).await.expect("delete");
    assert!(matches!(store.get(a, &c.id).await, Err(StoreError::NotFound)));
}

async fn names_and_legacy_slots_are_unique<S: ConnectionStore>(store: &S, a: &AccountId, b: &AccountId) {
    store.insert(&new_connection(a, "Unique", "Org", "x@y.z", 1), &NewSecrets::default()).await.expect("first");
    let dup = store.insert(&new_connection(a, "UNIQUE", "Org", "x@y.z", 2), &NewSecrets::default()).await;
    assert!(matches!(dup, Err(StoreError::Conflict(ref m)) if m.contains("name")), "{dup:?}");
    store
        .insert(&new_connection(b, "Unique", "Org", "x@y.z", 3), &NewSecrets::default())
        .await
        .expect("other accounts may reuse it");
    let (system, environment) = (SystemId::generate(), EnvironmentId::generate());
    let legacy = |created| Connection {
        id: ConnectionId::generate(),
        kind: ConnectionKind::Legacy { system_id: system.clone(), environment_id: environment.clone(), active: true },
        ..new_connection(a, "ignored", "Org", "x@y.z", created)
    };
    store.insert(&legacy(4), &NewSecrets::default()).await.expect("legacy");
    let second = store.insert(&legacy(5), &NewSecrets::default()).await;
    assert!(matches!(second, Err(StoreError::Conflict(ref m)) if m.contains("system")), "{second:?}");
}

fn search_query(term: &str) -> ListQuery {
    ListQuery { search: Some(term.into()), limit: 50, ..Default::default() }
}

/// #16: every column sorts (both ways, NULL as empty text, ties by id), the filters combine
/// with each other and the search, and keyset pages walk the same order as one long list —
/// forwards, backwards, from a row and from the end — with the count and their position.
async fn filters_sorts_and_keyset_pages_agree<S: ConnectionStore>(store: &S, a: &AccountId, b: &AccountId) {
    use store::{AuthKind, Cursor, Filters};
    let mut all = Vec::new();
    for i in 0..23i64 {
        let mut c = new_connection(
            a,
            &format!("Conn {i}"),
            &format!("Org {}", (i * 7) % 5),
            &format!("u{}@x.test", i % 4),
            100 - i % 6,
        );
        if i % 3 == 0 {
            c.status = ConnectionStatus::LoggedOut;
        }
        if i % 4 == 1 {
            c.org_type = OrgType::Sandbox;
        }
        if i % 5 == 2 {
            c.auth = AuthMethod::Jwt { consumer_key: "3MVG9key".into(), username: "j@x.test".into() };
        }
        if i % 7 == 3 {
            c.kind = ConnectionKind::Legacy {
                system_id: SystemId::generate(),
                environment_id: EnvironmentId::generate(),
                active: i % 2 == 0,
            };
            c.auth = AuthMethod::OAuth { consumer_key: "3MVG9key".into() };
            c.created_by = None;
            c.org = None;
        }
        store.insert(&c, &NewSecrets::default()).await.expect("insert");
        all.push(c);
    }
    // Another account's rows never show, nor serve as a cursor.
    let theirs = new_connection(b, "Theirs", "Org 1", "u1@x.test", 50);
    store.insert(&theirs, &NewSecrets::default()).await.expect("insert");

    let everything = |q: ListQuery| async move {
        store.list(a, &ListQuery { limit: 500, cursor: None, offset: 0, ..q }).await.expect("list")
    };
    // Filters: each alone and together, counted and listed alike.
    type Keep = Box<dyn Fn(&Connection) -> bool>;
    let cases: Vec<(Filters, Keep)> = vec![
        (
            Filters { status: Some(ConnectionStatus::LoggedOut), ..Default::default() },
            Box::new(|c| c.status == ConnectionStatus::LoggedOut),
        ),
        (
            Filters { org_type: Some(OrgType::Sandbox), ..Default::default() },
            Box::new(|c| c.org_type == OrgType::Sandbox),
        ),
        (Filters { legacy: Some(true), ..Default::default() }, Box::new(|c| c.is_legacy())),
        (Filters { legacy: Some(false), ..Default::default() }, Box::new(|c| !c.is_legacy())),
        (
            Filters { auth: Some(AuthKind::Jwt), ..Default::default() },
            Box::new(|c| matches!(c.auth, AuthMethod::Jwt { .. })),
        ),
        (
            Filters {
                status: Some(ConnectionStatus::LoggedIn),
                org_type: Some(OrgType::Production),
                legacy: Some(false),
                auth: Some(AuthKind::OAuth),
            },
            Box::new(|c| {
                c.status == ConnectionStatus::LoggedIn
                    && c.org_type == OrgType::Production
                    && !c.is_legacy()
                    && matches!(c.auth, AuthMethod::OAuth { .. })
            }),
        ),
    ];
    for round in 0..2 {
        if round == 1 {
            // The counts follow a status change, an edit of a filtered column and a delete.
            let dead = Observation::Dead { reason: StatusReason::UserInactive, detail: "inactive user".into() };
            let i = all.iter().position(|c| c.status == ConnectionStatus::LoggedIn).expect("logged in");
            store.observe(&all[i].id, &dead, None, 200).await.expect("observe");
            all[i].status = ConnectionStatus::LoggedOut;
            let i = all.iter().position(|c| !c.is_legacy() && c.org_type == OrgType::Production).expect("production");
            all[i].org_type = OrgType::Sandbox;
            store.update(&all[i], &NewSecrets::default()).await.expect("update");
            let gone =
                all.remove(all.iter().position(|c| c.status == ConnectionStatus::LoggedOut).expect("logged out"));
            store.delete(a, &gone.id).await.expect("delete");
            let page = everything(ListQuery { filters: cases[0].0, ..Default::default() }).await;
            let want = all.iter().filter(|c| c.status == ConnectionStatus::LoggedOut).count() as u64;
            assert_eq!(page.total, want, "deleted: counted no more");
            // Back, as it was (the rest of this test counts 23 rows).
            store.insert(&gone, &NewSecrets::default()).await.expect("insert");
            all.push(gone);
        }
        for (filters, keep) in &cases {
            let page = everything(ListQuery { filters: *filters, ..Default::default() }).await;
            let mut want: Vec<&str> = all.iter().filter(|c| keep(c)).map(|c| c.id.as_str()).collect();
            let mut got: Vec<&str> = page.rows.iter().map(|c| c.id.as_str()).collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "{filters:?} (round {round})");
            assert_eq!(page.total, want.len() as u64, "{filters:?} (round {round})");
            assert!(!want.is_empty(), "the case selects something: {filters:?}");
        }
    }
    // A filter with a search: both hold.
    let page = everything(ListQuery {
        search: Some("u1@".into()),
        filters: Filters { org_type: Some(OrgType::Sandbox), ..Default::default() },
        ..Default::default()
    })
    .await;
    let want =
        all.iter().filter(|c| c.org_type == OrgType::Sandbox && c.modified_by.as_deref() == Some("u1@x.test")).count();
    assert_eq!((page.rows.len(), page.total), (want, want as u64));
    assert!(want > 0);

    let sorts = [
        SortKey::ConnectionId,
        SortKey::Environment,
        SortKey::AccountName,
        SortKey::CreatedAt,
        SortKey::CreatedBy,
        SortKey::ModifiedAt,
        SortKey::ModifiedBy,
        SortKey::Status,
        SortKey::Activity,
    ];
    let text = |v: Option<&str>| v.unwrap_or("").to_lowercase();
    for sort in sorts {
        for descending in [false, true] {
            let full = everything(ListQuery { sort, descending, ..Default::default() }).await;
            let ids: Vec<String> = full.rows.iter().map(|c| c.id.to_string()).collect();
            assert_eq!(ids.len(), 23);
            // The order is the column's, with ties in id order.
            for pair in full.rows.windows(2) {
                let key = |c: &Connection| -> (String, i64) {
                    match sort {
                        SortKey::ConnectionId => (String::new(), 0),
                        SortKey::Environment => (format!("{:?}", c.org_type).to_lowercase(), 0),
                        SortKey::AccountName => (text(c.org.as_ref().map(|o| o.org_name.as_str())), 0),
                        SortKey::CreatedAt => (String::new(), c.created_at),
                        SortKey::CreatedBy => (text(c.created_by.as_deref()), 0),
                        SortKey::ModifiedAt => (String::new(), c.modified_at),
                        SortKey::ModifiedBy => (text(c.modified_by.as_deref()), 0),
                        SortKey::Status => (c.status.as_str().to_string(), 0),
                        SortKey::Activity => {
                            (String::new(), i64::from(matches!(c.kind, ConnectionKind::Legacy { active: false, .. })))
                        }
                    }
                };
                let (x, y) = (key(&pair[0]), key(&pair[1]));
                let ordered = if descending { x >= y } else { x <= y };
                assert!(ordered, "{sort:?} desc={descending}: {x:?} then {y:?}");
                if x == y {
                    let ids_ordered = if descending {
                        pair[0].id.as_str() > pair[1].id.as_str()
                    } else {
                        pair[0].id.as_str() < pair[1].id.as_str()
                    };
                    assert!(ids_ordered, "{sort:?}: a tie is broken by id");
                }
            }
            // Keyset pages of 5 forwards, then backwards, give the same rows.
            let page = |cursor: Option<Cursor>| async move {
                store
                    .list(a, &ListQuery { sort, descending, limit: 5, cursor, ..Default::default() })
                    .await
                    .expect("page")
            };
            let mut walked = Vec::new();
            let mut cursor = None;
            loop {
                let p = page(cursor.clone()).await;
                assert_eq!(p.total, 23);
                assert_eq!(p.position, walked.len() as u64, "{sort:?}: the page's position");
                walked.extend(p.rows.iter().map(|c| c.id.to_string()));
                match p.rows.last() {
                    Some(last) if walked.len() < 23 => cursor = Some(Cursor::After(last.id.clone())),
                    _ => break,
                }
            }
            assert_eq!(walked, ids, "{sort:?} desc={descending}: forwards");
            let last = page(Some(Cursor::Last)).await;
            assert_eq!((last.position, last.rows.len()), (18, 5), "the last page is the last 5 rows");
            let mut back: Vec<String> = last.rows.iter().map(|c| c.id.to_string()).collect();
            let mut first = last.rows.first().map(|c| c.id.clone());
            while let Some(id) = first {
                let p = page(Some(Cursor::Before(id))).await;
                let mut ids: Vec<String> = p.rows.iter().map(|c| c.id.to_string()).collect();
                ids.extend(back);
                back = ids;
                first = p.rows.first().map(|c| c.id.clone());
            }
            assert_eq!(back, ids, "{sort:?} desc={descending}: backwards");
            let from = page(Some(Cursor::From(full.rows[11].id.clone()))).await;
            assert_eq!(from.rows[0].id, full.rows[11].id, "a page from a row starts with it");
            assert_eq!(from.position, 11);
        }
    }
    // Keyset pages with a search and a filter together (the bind order: the account, the
    // search, then the cursor's row): the same rows as one long list of the same query.
    let narrowed = |cursor: Option<Cursor>, limit: u32| ListQuery {
        search: Some("u1@".into()),
        filters: Filters { org_type: Some(OrgType::Sandbox), ..Default::default() },
        sort: SortKey::AccountName,
        limit,
        cursor,
        ..Default::default()
    };
    let whole: Vec<String> =
        store.list(a, &narrowed(None, 500)).await.expect("list").rows.iter().map(|c| c.id.to_string()).collect();
    assert!(whole.len() >= 3, "{whole:?}");
    let mut walked: Vec<String> = Vec::new();
    let mut cursor = None;
    loop {
        let p = store.list(a, &narrowed(cursor.clone(), 2)).await.expect("page");
        assert_eq!(p.position, walked.len() as u64);
        walked.extend(p.rows.iter().map(|c| c.id.to_string()));
        match p.rows.last() {
            Some(last) if walked.len() < whole.len() => cursor = Some(Cursor::After(last.id.clone())),
            _ => break,
        }
    }
    assert_eq!(walked, whole, "keyset pages of a searched, filtered list");
    let before = store
        .list(a, &narrowed(Some(Cursor::Before(domain::ConnectionId::parse(&whole[2]).expect("id"))), 2))
        .await
        .expect("page");
    assert_eq!(before.rows.iter().map(|c| c.id.to_string()).collect::<Vec<_>>(), whole[..2].to_vec());
    // A cursor of another account (or a row that is gone) is no row of this list, whichever way.
    for cursor in [Cursor::After(theirs.id.clone()), Cursor::Before(theirs.id.clone()), Cursor::From(theirs.id.clone())]
    {
        let p = store
            .list(a, &ListQuery { limit: 5, cursor: Some(cursor.clone()), ..Default::default() })
            .await
            .expect("page");
        assert!(p.rows.is_empty(), "{cursor:?}");
        assert_eq!(p.total, 23);
    }
}

/// #17: a rollout's targets start held in their waves; only started waves are claimed; the
/// rollout moves only from the state its mover read (a lost race changes nothing); running
/// releases the next wave, pause holds what is pending, abort skips what has not started and
/// ends the deployment; a deployment whose waves all ended finishes as usual.
async fn rollouts_move_in_waves_and_only_from_what_was_read<S: ConnectionStore + DeploymentStore + CatalogStore>(
    store: &S,
    a: &AccountId,
) {
    use domain::{
        BundleId, BundleInfo, CacheControl, Deployment, DeploymentId, DeploymentStatus as S, Gate, ResourceName,
        TargetStatus,
    };
    let system =
        domain::System { id: SystemId::generate(), account_id: a.clone(), name: "Waves".into(), created_at: 0 };
    store.insert_system(&system).await.expect("system");
    let env = store.environments(a).await.expect("envs")[0].id.clone();
    let mut ids = Vec::new();
    for i in 0..5 {
        let c = new_connection(a, &format!("wave {i}"), "Org", "w@o.example", i);
        store.insert(&c, &NewSecrets::default()).await.expect("insert");
        ids.push(c.id);
    }
    let bundle = BundleInfo {
        id: BundleId::generate(),
        account_id: a.clone(),
        sha256: "cd".repeat(32),
        size: 3,
        files: vec!["a.js".into()],
        created_at: 0,
        created_by: "me@a.example".into(),
    };
    let bundle = store.save_bundle(&bundle, b"zip").await.expect("bundle");
    let wave = |gate| domain::Wave { count: None, percent: None, connections: None, gate };
    let d = Deployment {
        id: DeploymentId::generate(),
        account_id: a.clone(),
        system_id: system.id.clone(),
        environment_id: env.clone(),
        bundle_id: bundle.id.clone(),
        resource_name: ResourceName::parse("Waves").expect("name"),
        cache_control: CacheControl::Private,
        status: S::Running,
        created_at: 0,
        created_by: "me@a.example".into(),
        finished_at: None,
        redeploy_of: None,
        with_loader: false,
        rollout: Some(domain::Rollout {
            waves: vec![wave(Gate::Auto), wave(Gate::Approval), wave(Gate::At(99))],
            max_failure_rate: 0.25,
        }),
        wave: 0,
        note: None,
        overwrite_drift: false,
    };
    store.create_deployment(&d, &ids, &[0, 1, 1, 2, 2]).await.expect("deployment");
    let (read, targets) = store.deployment(a, &d.id).await.expect("read");
    assert_eq!(read.rollout, d.rollout, "the plan round-trips");
    let status_of = |targets: &[domain::Target], wave: u32| -> Vec<TargetStatus> {
        targets.iter().filter(|t| t.wave == wave).map(|t| t.status).collect()
    };
    assert_eq!(status_of(&targets, 0), [TargetStatus::Pending]);
    assert_eq!(status_of(&targets, 1), [TargetStatus::Held, TargetStatus::Held]);
    // Only the started wave is claimed.
    let claimed = store.claim_targets("w1", 100, 60_000, 10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].target.connection_id, ids[0]);
    assert!(store.rollouts_to_advance().await.expect("advance").iter().all(|(r, _)| r.id != d.id), "wave 0 still runs");
    let done = store::TargetOutcome::Done {
        status: TargetStatus::Succeeded,
        action: "created".into(),
        resource_id: "081".into(),
        url: "/resource/1/Waves".into(),
        loader: None,
        baseline: None,
    };
    assert!(store.finish_target(&d.id, &ids[0], "w1", &done, 110).await.expect("finish"));
    let (read, _) = store.deployment(a, &d.id).await.expect("read");
    assert_eq!((read.status, read.finished_at), (S::Running, None), "later waves keep it open");
    let due = store.rollouts_to_advance().await.expect("advance");
    let (_, counts) = due.iter().find(|(r, _)| r.id == d.id).expect("its wave ended: something to decide");
    assert_eq!((counts[0].succeeded, counts[1].held, counts[2].held), (1, 2, 2));
    // Waiting for approval holds; a mover that read something else changes nothing.
    assert!(
        store
            .move_rollout(&d.id, (S::Running, 0), (S::Waiting, 0), Some("wave 2 of 3 waits for approval"), 120)
            .await
            .expect("wait")
    );
    assert!(!store.move_rollout(&d.id, (S::Running, 0), (S::Running, 1), None, 121).await.expect("stale"), "lost race");
    assert!(store.claim_targets("w1", 130, 60_000, 10).await.expect("claim").is_empty());
    // Approved: wave 1 runs; paused: its pending targets are held again; resumed: pending.
    assert!(store.move_rollout(&d.id, (S::Waiting, 0), (S::Running, 1), None, 140).await.expect("approve"));
    assert_eq!(store.wave_counts(&d.id).await.expect("counts")[1].pending, 2);
    assert!(
        store.move_rollout(&d.id, (S::Running, 1), (S::Paused, 1), Some("Paused by me"), 150).await.expect("pause")
    );
    let (read, targets) = store.deployment(a, &d.id).await.expect("read");
    assert_eq!((read.status, read.note.as_deref()), (S::Paused, Some("Paused by me")));
    assert_eq!(status_of(&targets, 1), [TargetStatus::Held, TargetStatus::Held]);
    assert!(store.claim_targets("w1", 160, 60_000, 10).await.expect("claim").is_empty(), "paused: nothing starts");
    assert!(store.move_rollout(&d.id, (S::Paused, 1), (S::Running, 1), None, 170).await.expect("resume"));
    let claimed = store.claim_targets("w1", 180, 60_000, 10).await.expect("claim");
    assert_eq!(claimed.len(), 2, "wave 1 only");
    // Aborted with wave 1 running: wave 2 skipped, the deployment ended; running targets still
    // record their outcome.
    assert!(
        store.move_rollout(&d.id, (S::Running, 1), (S::Aborted, 1), Some("Aborted by me"), 190).await.expect("abort")
    );
    let (read, targets) = store.deployment(a, &d.id).await.expect("read");
    assert_eq!((read.status, read.finished_at), (S::Aborted, Some(190)));
    assert_eq!(status_of(&targets, 2), [TargetStatus::Skipped, TargetStatus::Skipped]);
    assert!(store.finish_target(&d.id, &ids[1], "w1", &done, 200).await.expect("finish"));
    assert_eq!(store.deployment(a, &d.id).await.expect("read").0.status, S::Aborted, "an aborted deployment stays so");
    assert!(
        !store.move_rollout(&d.id, (S::Aborted, 1), (S::Running, 2), None, 210).await.expect("ended"),
        "an ended one does not move"
    );

    // A target that fails for now while its deployment is paused is held, not tried again;
    // once aborted, skipped. A paused deployment's targets are never claimed.
    let single = Deployment { id: DeploymentId::generate(), rollout: None, ..d.clone() };
    store.create_deployment(&single, &ids[..1], &[]).await.expect("deployment");
    assert_eq!(store.claim_targets("w2", 300, 60_000, 10).await.expect("claim").len(), 1);
    assert!(store.move_rollout(&single.id, (S::Running, 0), (S::Paused, 0), None, 310).await.expect("pause"));
    let retry = store::TargetOutcome::Retry { error: "503".into(), not_before: 0 };
    assert!(store.finish_target(&single.id, &ids[0], "w2", &retry, 320).await.expect("finish"));
    let (_, targets) = store.deployment(a, &single.id).await.expect("read");
    assert_eq!(targets[0].status, TargetStatus::Held, "held while paused");
    assert!(store.claim_targets("w2", 330, 60_000, 10).await.expect("claim").is_empty());
    assert!(store.move_rollout(&single.id, (S::Paused, 0), (S::Running, 0), None, 340).await.expect("resume"));
    assert_eq!(store.claim_targets("w2", 350, 60_000, 10).await.expect("claim").len(), 1);
    assert!(store.move_rollout(&single.id, (S::Running, 0), (S::Aborted, 0), None, 360).await.expect("abort"));
    assert!(store.finish_target(&single.id, &ids[0], "w2", &retry, 370).await.expect("finish"));
    let (read, targets) = store.deployment(a, &single.id).await.expect("read");
    assert_eq!((read.status, targets[0].status), (S::Aborted, TargetStatus::Skipped), "skipped once aborted");
    assert!(store.claim_targets("w2", 400, 60_000, 10).await.expect("claim").is_empty());
}

async fn a_short_search_counts_up_to_its_cap<S: ConnectionStore>(store: &S, a: &AccountId) {
    for i in 0..store::SHORT_SEARCH_CAP + 5 {
        let c = new_connection(a, &format!("z{i}"), &format!("Zeta {i}"), "ops@example.com", i as i64);
        store.insert(&c, &NewSecrets::default()).await.expect("insert");
    }
    let c = new_connection(a, "other", "Other", "zed@example.com", 9_999);
    store.insert(&c, &NewSecrets::default()).await.expect("insert");
    let page = store.list(a, &search_query("z")).await.expect("list");
    assert_eq!((page.total, page.more), (store::SHORT_SEARCH_CAP, true), "the count stops at its cap");
    assert_eq!(page.rows.len(), 50);
    // Pages go on past the cap by keyset, their position as the link knew it.
    let last = page.rows.last().expect("row").id.clone();
    let next = ListQuery { cursor: Some(store::Cursor::After(last)), position: Some(50), ..search_query("z") };
    let next = store.list(a, &next).await.expect("list");
    assert_eq!((next.position, next.rows.len()), (50, 50));
    assert!(next.rows.iter().all(|c| !page.rows.iter().any(|p| p.id == c.id)), "no row twice");
    let page = store.list(a, &search_query("zet")).await.expect("list");
    assert_eq!((page.total, page.more), (store::SHORT_SEARCH_CAP + 5, false), "three characters count them all");
}

async fn search_sort_and_pages_work<S: ConnectionStore>(store: &S, a: &AccountId) {
    for (i, (org, email)) in [
        ("Globex", "hank@globex.example"),
        ("Initech", "peter@initech.example"),
        ("ACME corp", "wile@acme.example"),
        ("Acme labs", "road@runner.example"),
    ]
    .iter()
    .enumerate()
    {
        store
            .insert(&new_connection(a, &format!("c{i}"), org, email, i as i64 + 10), &NewSecrets::default())
            .await
            .expect("insert");
    }
    let page =
        store.list(a, &ListQuery { search: Some("acme".into()), limit: 50, ..Default::default() }).await.expect("list");
    assert_eq!(page.total, 2, "case-insensitive substring of the org name");
    let page = store
        .list(a, &ListQuery { search: Some("INITECH.EX".into()), limit: 50, ..Default::default() })
        .await
        .expect("list");
    assert_eq!(page.rows.len(), 1, "and of the emails");
    let page =
        store.list(a, &ListQuery { search: Some("%".into()), limit: 50, ..Default::default() }).await.expect("list");
    assert_eq!(page.total, 0, "LIKE wildcards are matched literally");
    // Every trigram of "labs acme" is in "Acme labs"; the term is not: the whole term decides.
    let page = store.list(a, &search_query("labs acme")).await.expect("list");
    assert_eq!(page.total, 0, "the rarest trigrams find candidates, the whole term matches");
    // A search with the health filter follows status changes and edits (SQLite keeps a second
    // trigram index of the connections not Logged in).
    let unhealthy = |term: &str| ListQuery {
        search: Some(term.into()),
        filters: store::Filters { status: Some(ConnectionStatus::LoggedOut), ..Default::default() },
        limit: 50,
        ..Default::default()
    };
    let mut initech = store.list(a, &search_query("initech")).await.expect("list").rows.remove(0);
    assert_eq!(store.list(a, &unhealthy("initech")).await.expect("list").total, 0);
    let dead = Observation::Dead { reason: StatusReason::UserInactive, detail: "inactive user".into() };
    store.observe(&initech.id, &dead, None, 20).await.expect("observe");
    assert_eq!(store.list(a, &unhealthy("initech")).await.expect("list").total, 1, "Logged out: found");
    // From one status not Logged in to the other (SQLite: from one status's index to the other's).
    let not_available = |term: &str| ListQuery {
        filters: store::Filters { status: Some(ConnectionStatus::NotAvailable), ..Default::default() },
        ..unhealthy(term)
    };
    assert_eq!(store.list(a, &not_available("initech")).await.expect("list").total, 0);
    let gone = Observation::Refused { reason: StatusReason::AppBlocked, detail: "the app is blocked".into() };
    store.observe(&initech.id, &gone, None, 21).await.expect("observe");
    assert_eq!(store.list(a, &not_available("initech")).await.expect("list").total, 1, "Not available: found");
    assert_eq!(store.list(a, &unhealthy("initech")).await.expect("list").total, 0, "no longer Logged out");
    store.observe(&initech.id, &dead, None, 22).await.expect("observe");
    if let Some(org) = initech.org.as_mut() {
        org.org_name = "Hooli Systems".into();
    }
    initech.status = ConnectionStatus::LoggedOut;
    store.update(&initech, &NewSecrets::default()).await.expect("update");
    assert_eq!(store.list(a, &unhealthy("hooli")).await.expect("list").total, 1, "by its new name");
    store.observe(&initech.id, &Observation::Healthy, None, 30).await.expect("observe");
    assert_eq!(store.list(a, &unhealthy("hooli")).await.expect("list").total, 0, "Logged in again");
    assert_eq!(store.list(a, &search_query("hooli")).await.expect("list").total, 1);
    if let Some(org) = initech.org.as_mut() {
        org.org_name = "Initech".into();
    }
    initech.status = ConnectionStatus::LoggedIn;
    store.update(&initech, &NewSecrets::default()).await.expect("update");
    // One or two characters match the start of the org's name or of an email (#17).
    let total = |page: store::Page| (page.total, page.more);
    assert_eq!(total(store.list(a, &search_query("Ac")).await.expect("list")), (2, false), "org names, any case");
    assert_eq!(total(store.list(a, &search_query("ro")).await.expect("list")), (1, false), "an email's start");
    assert_eq!(total(store.list(a, &search_query("me")).await.expect("list")), (0, false), "not inside a word");
    assert_eq!(total(store.list(a, &search_query("g")).await.expect("list")), (1, false));
    // Control characters are no one's search (the schema fuzzer sent a NUL: SQLite's full-text
    // query ended early, PostgreSQL refuses it in text); they are left out, not an error.
    for term in ["ac\0me", "\0acme\u{1b}", "ac\u{7f}me"] {
        let page = store.list(a, &search_query(term)).await.expect("a control character is no error");
        assert_eq!(page.total, 2, "{term:?}");
    }
    let page = store.list(a, &search_query("\0\0")).await.expect("only control characters");
    assert_eq!(page.total, 4, "nothing left to search for: every row");
    let page =
        store.list(a, &ListQuery { sort: SortKey::AccountName, limit: 2, ..Default::default() }).await.expect("list");
    assert_eq!(page.total, 4);
    let names: Vec<_> =
        page.rows.iter().map(|c| c.org.as_ref().map(|o| o.org_name.clone()).unwrap_or_default()).collect();
    assert_eq!(names, ["ACME corp", "Acme labs"]);
    let next = store
        .list(a, &ListQuery { sort: SortKey::AccountName, limit: 2, offset: 2, ..Default::default() })
        .await
        .expect("list");
    let names: Vec<_> =
        next.rows.iter().map(|c| c.org.as_ref().map(|o| o.org_name.clone()).unwrap_or_default()).collect();
    assert_eq!(names, ["Globex", "Initech"]);
    // The export stream: every matching row, in the same order, whatever the limit says.
    use futures_util::StreamExt;
    let streamed: Vec<_> = store
        .stream(a, &ListQuery { sort: SortKey::AccountName, limit: 1, ..Default::default() })
        .map(|r| r.expect("row").org.map(|o| o.org_name).unwrap_or_default())
        .collect()
        .await;
    assert_eq!(streamed, ["ACME corp", "Acme labs", "Globex", "Initech"]);
    let searched: Vec<_> =
        store.stream(a, &ListQuery { search: Some("acme".into()), ..Default::default() }).collect().await;
    assert_eq!(searched.len(), 2);
    // The export's chunks: the same rows, the same order, only the table's fields.
    let chunked: Vec<String> = store
        .table_chunks(a, &ListQuery { sort: SortKey::AccountName, descending: true, ..Default::default() })
        .map(|chunk| chunk.expect("chunk"))
        .collect::<Vec<_>>()
        .await
        .concat()
        .into_iter()
        .map(|row| row.org_name.unwrap_or_default())
        .collect();
    assert_eq!(chunked, ["Initech", "Globex", "Acme labs", "ACME corp"]);
    // By date (keyset chunks), both directions, and with a search.
    let by_date = |descending: bool| ListQuery { descending, ..Default::default() };
    let oldest_first: Vec<i64> = store
        .table_chunks(a, &by_date(false))
        .map(|c| c.expect("chunk"))
        .collect::<Vec<_>>()
        .await
        .concat()
        .iter()
        .map(|r| r.created_at)
        .collect();
    assert_eq!(oldest_first, [10, 11, 12, 13]);
    let newest_first: Vec<i64> = store
        .table_chunks(a, &by_date(true))
        .map(|c| c.expect("chunk"))
        .collect::<Vec<_>>()
        .await
        .concat()
        .iter()
        .map(|r| r.created_at)
        .collect();
    assert_eq!(newest_first, [13, 12, 11, 10]);
    let searched: usize = store
        .table_chunks(a, &ListQuery { search: Some("acme".into()), sort: SortKey::ModifiedAt, ..Default::default() })
        .map(|c| c.expect("chunk").len())
        .collect::<Vec<_>>()
        .await
        .iter()
        .sum();
    assert_eq!(searched, 2);
    let rows: Vec<_> = store.table_chunks(a, &search_query("INITECH")).collect::<Vec<_>>().await;
    let row = &rows[0].as_ref().expect("chunk")[0];
    assert_eq!(
        (row.legacy, row.org_type.as_str(), row.status.as_str(), row.active),
        (false, "production", "logged_in", true)
    );
    assert_eq!(row.created_by.as_deref(), Some("peter@initech.example"));
    let newest = store.list(a, &ListQuery { descending: true, limit: 1, ..Default::default() }).await.expect("list");
    assert_eq!(newest.rows[0].created_at, 13);
    // The search index follows edits and deletes.
    let mut renamed = newest.rows[0].clone();
    if let Some(org) = renamed.org.as_mut() {
        org.org_name = "Umbrella Holdings".into();
    }
    store.update(&renamed, &NewSecrets::default()).await.expect("update");
    let search = |term: &str| ListQuery { search: Some(term.into()), limit: 50, ..Default::default() };
    assert_eq!(store.list(a, &search("umbrella")).await.expect("list").total, 1);
    assert_eq!(
        store.list(a, &search("acme labs")).await.expect("list").total,
        0,
        "the old name is gone from the index"
    );
    store.delete(a, &renamed.id).await.expect("delete");
    assert_eq!(store.list(a, &search("umbrella")).await.expect("list").total, 0);
    assert_eq!(
        store.list(a, &ListQuery { limit: 50, ..Default::default() }).await.expect("list").total,
        3,
        "the total follows deletes"
    );
    assert_eq!(store.list(a, &search("ac")).await.expect("list").total, 1, "short terms scan");
}

async fn tokens_rotate_atomically<S: ConnectionStore>(store: &S, a: &AccountId) {
    let c = new_connection(a, "Tokens", "Org", "t@o.example", 1);
    let secrets = NewSecrets {
        consumer_secret: Some(ClientSecret::new("s3cret")),
        tokens: Some(tokens("access-1", Some("refresh-1"))),
        ..Default::default()
    };
    store.insert(&c, &secrets).await.expect("insert");
    let stored = store.secrets(&c.id).await.expect("secrets");
    assert_eq!(stored.access_token.as_ref().map(AccessToken::expose_secret), Some("access-1"));
    assert_eq!(stored.consumer_secret.as_ref().map(ClientSecret::expose_secret), Some("s3cret"));
    let v = stored.token_version;
    assert!(store.save_tokens(&c.id, &tokens("access-2", None), v, 5).await.expect("save"), "first writer wins");
    assert!(
        !store.save_tokens(&c.id, &tokens("access-3", Some("refresh-3")), v, 6).await.expect("save"),
        "a stale writer loses"
    );
    let after = store.secrets(&c.id).await.expect("secrets");
    assert_eq!(after.access_token.as_ref().map(AccessToken::expose_secret), Some("access-2"));
    assert_eq!(
        after.refresh_token.as_ref().map(RefreshToken::expose_secret),
        Some("refresh-1"),
        "no new refresh token keeps the old one"
    );
    let moved =
        TokenSet { instance_url: "https://moved.my.salesforce.com/".into(), ..tokens("access-4", Some("refresh-4")) };
    assert!(store.save_tokens(&c.id, &moved, after.token_version, 7).await.expect("save"));
    let rotated = store.secrets(&c.id).await.expect("secrets");
    assert_eq!(rotated.refresh_token.as_ref().map(RefreshToken::expose_secret), Some("refresh-4"));
    // Instance URLs are stored in one spelling, without a trailing slash, whichever way they come.
    assert_eq!(rotated.instance_url.as_deref(), Some("https://moved.my.salesforce.com"), "from a token write");
    let mut edited = store.get(a, &c.id).await.expect("get");
    assert_eq!(edited.org.as_ref().map(|o| o.instance_url.as_str()), Some("https://moved.my.salesforce.com"));
    if let Some(org) = edited.org.as_mut() {
        org.instance_url = "https://edited.my.salesforce.com/".into();
    }
    store.update(&edited, &NewSecrets::default()).await.expect("update");
    let edited = store.get(a, &c.id).await.expect("get");
    assert_eq!(edited.org.map(|o| o.instance_url).as_deref(), Some("https://edited.my.salesforce.com"), "from an edit");
}

/// Issue #14: when each OAuth grant was given (a sign-in with a refresh token) is kept through
/// renewals and moved only by another sign-in; grants list per app, oldest first, per account.
async fn oauth_grants_are_dated_by_their_sign_in_and_kept_by_renewals<S: ConnectionStore>(
    store: &S,
    a: &AccountId,
    b: &AccountId,
) {
    let signed_in = || NewSecrets { tokens: Some(tokens("access", Some("refresh"))), ..NewSecrets::default() };
    let mut ids = Vec::new();
    for (n, name) in [(30, "Third"), (10, "First"), (20, "Second")] {
        let c = new_connection(a, name, "Org", "grant@a.test", n);
        store.insert(&c, &signed_in()).await.expect("insert");
        ids.push(c.id);
    }
    let other_app = Connection {
        auth: AuthMethod::OAuth { consumer_key: "3MVG9other".into() },
        ..new_connection(a, "Other app", "Org", "grant@a.test", 5)
    };
    store.insert(&other_app, &signed_in()).await.expect("insert");
    store.insert(&new_connection(b, "B's", "Org", "grant@b.test", 1), &signed_in()).await.expect("insert");
    let name = |c: &Connection| match &c.kind {
        ConnectionKind::New { name } => name.as_str().to_string(),
        ConnectionKind::Legacy { .. } => String::new(),
    };
    let names = |list: Vec<Connection>| list.iter().map(|c| (name(c), c.granted_at)).collect::<Vec<_>>();
    let listed = names(store.oauth_grants(a, "3MVG9key").await.expect("grants"));
    assert_eq!(
        listed,
        [("First".to_string(), Some(10)), ("Second".to_string(), Some(20)), ("Third".to_string(), Some(30))]
    );
    // A renewal (even a rotation) keeps the grant's date; a sign-in again moves it.
    let first = store.get(a, &ids[1]).await.expect("get");
    let version = store.secrets(&first.id).await.expect("secrets").token_version;
    assert!(store.save_tokens(&first.id, &tokens("renewed", Some("rotated")), version, 99).await.expect("save"));
    assert_eq!(store.get(a, &first.id).await.expect("get").granted_at, Some(10));
    let again = Connection { modified_at: 40, ..first };
    store.update(&again, &signed_in()).await.expect("update");
    let listed = names(store.oauth_grants(a, "3MVG9key").await.expect("grants"));
    assert_eq!(listed.last(), Some(&("First".to_string(), Some(40))), "signed in again: now the newest");
    // An edit without a refresh token (a rename, a JWT key) leaves the date alone.
    let renamed = store.get(a, &ids[0]).await.expect("get");
    store.update(&Connection { modified_at: 50, ..renamed }, &NewSecrets::default()).await.expect("rename");
    assert_eq!(store.get(a, &ids[0]).await.expect("get").granted_at, Some(30));
    assert_eq!(store.oauth_grants(b, "3MVG9key").await.expect("grants").len(), 1, "per account");
}

/// Issue #14: the one way a saved connection's status changes, with its reason and an audit
/// entry in the same transaction when it changes.
/// `connection.failing` (#18): once per streak, only from Logged in.
async fn a_failing_streak_is_announced_once_and_only_from_logged_in<S: ConnectionStore + NotificationStore>(
    store: &S,
    a: &AccountId,
) {
    let c = new_connection(a, "Streaky", "Streaky Org", "streak@a.test", 1);
    store.insert(&c, &NewSecrets::default()).await.expect("insert");
    let failing = Observation::Failing {
        reason: StatusReason::SalesforceUnreachable,
        detail: "connect timed out".into(),
        grace_ms: 60_000,
    };
    let announced = || async {
        store
            .events(a, 50)
            .await
            .expect("events")
            .iter()
            .filter(|e| e.kind == domain::EventType::ConnectionFailing)
            .count()
    };
    store.observe(&c.id, &failing, None, 1_000).await.expect("observe");
    store.observe(&c.id, &failing, None, 2_000).await.expect("observe");
    assert_eq!(announced().await, 1, "the streak's first failure, once");
    store.observe(&c.id, &Observation::Healthy, None, 3_000).await.expect("healthy");
    store.observe(&c.id, &failing, None, 4_000).await.expect("a new streak");
    assert_eq!(announced().await, 2);
    // Not available already (refused for a person to fix): a failure then is no news.
    let refused = Observation::Refused { reason: StatusReason::ApiDisabled, detail: "API disabled".into() };
    store.observe(&c.id, &refused, None, 5_000).await.expect("refused");
    store.observe(&c.id, &failing, None, 6_000).await.expect("failing");
    assert_eq!(announced().await, 2);
}

async fn statuses_change_through_observations_with_their_reason_and_audit<S: ConnectionStore + AuditStore>(
    store: &S,
    a: &AccountId,
) {
    let c = new_connection(a, "Watched", "Watched Org", "watch@a.test", 1);
    store.insert(&c, &NewSecrets::default()).await.expect("insert");
    let status = |got: &Connection| (got.status, got.status_reason);
    let failing = |at_grace: i64| Observation::Failing {
        reason: StatusReason::SalesforceUnreachable,
        detail: "connect timed out".into(),
        grace_ms: at_grace,
    };
    let changes = || async {
        let q = AuditQuery { action: Some("connection.status_changed".into()), limit: 50, ..AuditQuery::default() };
        store.audit(a, &q).await.expect("audit").len()
    };
    // A transient failure within the grace period changes nothing a person sees.
    let change = store.observe(&c.id, &failing(60_000), None, 1_000).await.expect("observe");
    assert_eq!((change.to, change.changed), (ConnectionStatus::LoggedIn, false));
    store.observe(&c.id, &failing(60_000), None, 30_000).await.expect("observe");
    assert_eq!(changes().await, 0);
    // Past it (counted from the first failure): Not available, with the reason, audited once.
    let change = store.observe(&c.id, &failing(60_000), None, 61_000).await.expect("observe");
    assert_eq!(
        (change.from, change.to, change.changed),
        (ConnectionStatus::LoggedIn, ConnectionStatus::NotAvailable, true)
    );
    let got = store.get(a, &c.id).await.expect("get");
    assert_eq!(status(&got), (ConnectionStatus::NotAvailable, Some(StatusReason::SalesforceUnreachable)));
    assert!(got.status_detail.as_deref().is_some_and(|d| d.contains("connect timed out")), "{:?}", got.status_detail);
    store.observe(&c.id, &failing(60_000), None, 62_000).await.expect("again");
    assert_eq!(changes().await, 1, "the same status again is no change");
    // Success: Logged in, the failure forgotten (a new one starts its own grace period).
    store.observe(&c.id, &Observation::Healthy, None, 63_000).await.expect("healthy");
    assert_eq!(status(&store.get(a, &c.id).await.expect("get")), (ConnectionStatus::LoggedIn, None));
    assert_eq!(
        store.observe(&c.id, &failing(60_000), None, 64_000).await.expect("observe").to,
        ConnectionStatus::LoggedIn
    );
    // Dead credentials: Logged out at once; transient failures do not bring it back or move it.
    let dead = Observation::Dead { reason: StatusReason::UserInactive, detail: "inactive user".into() };
    let change = store.observe(&c.id, &dead, None, 65_000).await.expect("dead");
    assert_eq!((change.to, change.reason), (ConnectionStatus::LoggedOut, Some(StatusReason::UserInactive)));
    let change = store.observe(&c.id, &failing(0), None, 200_000).await.expect("observe");
    assert_eq!(
        (change.to, change.reason, change.changed),
        (ConnectionStatus::LoggedOut, Some(StatusReason::UserInactive), false)
    );
    // Logged out connections are not due for the periodic check.
    assert!(store.due_for_check(i64::MAX, 100).await.expect("due").iter().all(|d| d.id != c.id));
    let q = AuditQuery { action: Some("connection.status_changed".into()), limit: 50, ..AuditQuery::default() };
    let log = store.audit(a, &q).await.expect("audit");
    let (_, newest) = log.first().expect("entries");
    assert_eq!((newest.actor.as_str(), newest.target_label.as_deref()), ("lightbridge", Some("Watched")));
    let detail = newest.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("Logged in → Logged out") && detail.contains("user_inactive"), "{detail}");
    assert_eq!(log.len(), 3, "not available, logged in, logged out: each once");
    // A refused call: Not available now, no grace.
    let refused = Observation::Refused { reason: StatusReason::ApiDisabled, detail: "API_DISABLED_FOR_ORG".into() };
    store.observe(&c.id, &refused, None, 201_000).await.expect("refused");
    assert_eq!(
        status(&store.get(a, &c.id).await.expect("get")),
        (ConnectionStatus::NotAvailable, Some(StatusReason::ApiDisabled))
    );
    // Edits leave the status to observations.
    let mut edited = store.get(a, &c.id).await.expect("get");
    edited.status = ConnectionStatus::LoggedIn;
    store.update(&edited, &NewSecrets::default()).await.expect("update");
    assert_eq!(store.get(a, &c.id).await.expect("get").status, ConnectionStatus::NotAvailable);
    assert!(matches!(
        store.observe(&ConnectionId::generate(), &Observation::Healthy, None, 1).await,
        Err(StoreError::NotFound)
    ));
    // A failure seen with tokens since replaced says nothing about the stored ones.
    store.observe(&c.id, &Observation::Healthy, None, 202_000).await.expect("healthy");
    let seen = store.secrets(&c.id).await.expect("secrets").token_version;
    let reconnected = NewSecrets { tokens: Some(tokens("fresh", Some("fresh-refresh"))), ..Default::default() };
    store.update(&edited, &reconnected).await.expect("reconnect");
    let stale = Observation::Dead { reason: StatusReason::RefreshTokenInvalid, detail: "old token".into() };
    let change = store.observe(&c.id, &stale, Some(seen), 203_000).await.expect("stale");
    assert_eq!((change.to, change.changed), (ConnectionStatus::LoggedIn, false));
    let current = store.secrets(&c.id).await.expect("secrets").token_version;
    assert_eq!(
        store.observe(&c.id, &stale, Some(current), 204_000).await.expect("current").to,
        ConnectionStatus::LoggedOut
    );
    // A renewal brings a Logged out connection back, but not one whose calls are refused.
    let change = store.observe(&c.id, &Observation::Renewed, None, 205_000).await.expect("renewed");
    assert_eq!(change.to, ConnectionStatus::LoggedIn);
    store.observe(&c.id, &refused, None, 206_000).await.expect("refused");
    let change = store.observe(&c.id, &Observation::Renewed, None, 207_000).await.expect("renewed");
    assert_eq!((change.to, change.changed), (ConnectionStatus::NotAvailable, false));
}

async fn systems_and_environments_belong_to_one_account<S: CatalogStore + ConnectionStore>(
    store: &S,
    a: &AccountId,
    b: &AccountId,
) {
    let envs = store.environments(a).await.expect("environments");
    let names: Vec<_> = envs.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["Production", "Test", "Sandbox"], "every account starts with the built-in three");
    assert!(envs.iter().all(|e| e.built_in));
    let uat = store.insert_environment(a, &EnvironmentId::generate(), "UAT").await.expect("add");
    assert_eq!((uat.position, uat.built_in), (3, false), "added after the built-in ones");
    assert!(matches!(
        store.insert_environment(a, &EnvironmentId::generate(), "uat").await,
        Err(StoreError::Conflict(_))
    ));
    store.insert_environment(b, &EnvironmentId::generate(), "UAT").await.expect("another account may use the name");
    assert!(matches!(store.environment(b, &uat.id).await, Err(StoreError::NotFound)));
    assert!(matches!(store.delete_environment(a, &envs[0].id).await, Err(StoreError::Conflict(_))), "built in");

    let system = domain::System {
        id: SystemId::generate(),
        account_id: a.clone(),
        name: "Sales Cloud (Lightning)".into(),
        created_at: 1,
    };
    store.insert_system(&system).await.expect("system");
    let twin = domain::System { id: SystemId::generate(), name: "sales cloud (lightning)".into(), ..system.clone() };
    assert!(matches!(store.insert_system(&twin).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.system(b, &system.id).await, Err(StoreError::NotFound)));
    assert!(matches!(store.rename_system(b, &system.id, "Stolen").await, Err(StoreError::NotFound)));
    assert!(store.systems(b).await.expect("b's systems").is_empty());
    store.rename_system(a, &system.id, "Service Cloud").await.expect("rename");
    let named = new_connection(a, "Acme Prod", "Org", "n@o.example", 2);
    store.insert(&named, &NewSecrets::default()).await.expect("named");
    assert!(store.name_taken(a, " acme prod ", None).await.expect("taken"), "any case, trimmed");
    assert!(!store.name_taken(a, "acme prod", Some(&named.id)).await.expect("itself"), "its own name is free");
    assert!(!store.name_taken(b, "acme prod", None).await.expect("b"), "per account");
    assert_eq!(store.system(a, &system.id).await.expect("get").name, "Service Cloud");

    // A legacy connector binds the system and the environment: neither goes while it exists.
    let mut legacy = new_connection(a, "unused", "Org", "l@o.example", 3);
    legacy.kind = ConnectionKind::Legacy { system_id: system.id.clone(), environment_id: uat.id.clone(), active: true };
    store.insert(&legacy, &NewSecrets::default()).await.expect("legacy");
    assert_eq!(store.legacy_connectors(a, &system.id).await.expect("connectors").len(), 1);
    assert!(store.legacy_connectors(b, &system.id).await.expect("b").is_empty());
    assert!(matches!(store.delete_system(a, &system.id).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.delete_environment(a, &uat.id).await, Err(StoreError::Conflict(_))));
    store.delete(a, &legacy.id).await.expect("remove the connector");
    store.delete_environment(a, &uat.id).await.expect("now it goes");
    assert!(matches!(store.delete_system(b, &system.id).await, Err(StoreError::NotFound)));
    store.delete_system(a, &system.id).await.expect("and the system");

    assert!(!store.account(a).await.expect("account").connectors_enabled, "off until the operator enables it");
    store.set_connectors_enabled(a, true).await.expect("enable");
    assert!(store.account(a).await.expect("account").connectors_enabled);
    assert!(!store.account(b).await.expect("account").connectors_enabled);
    assert_eq!(store.accounts().await.expect("all").len(), 2);
}

/// Issue #15: a system's loader settings, kept per system, in its account, gone with it.
async fn loader_settings_belong_to_their_system<S: CatalogStore>(store: &S, a: &AccountId, b: &AccountId) {
    let system =
        domain::System { id: SystemId::generate(), account_id: a.clone(), name: "Sales".into(), created_at: 1 };
    store.insert_system(&system).await.expect("system");
    assert_eq!(store.loader_config(a, &system.id).await.expect("none yet"), None);
    let config = domain::LoaderConfig {
        system_id: system.id.clone(),
        scripts: vec!["player.js".into(), "js/b.js".into()],
        styles: vec!["css/p.css".into()],
        trusted_sites: vec!["https://api.example.com".into()],
        apps: vec!["standard__LightningSales".into(), "MyApp".into()],
        updated_at: 5,
        updated_by: "admin@a.example".into(),
    };
    assert!(matches!(store.put_loader_config(b, &config).await, Err(StoreError::NotFound)), "not b's system");
    store.put_loader_config(a, &config).await.expect("put");
    assert_eq!(store.loader_config(a, &system.id).await.expect("get"), Some(config.clone()));
    assert_eq!(store.loader_config(b, &system.id).await.expect("b"), None);
    let changed = domain::LoaderConfig { scripts: vec!["other.js".into()], updated_at: 6, ..config };
    store.put_loader_config(a, &changed).await.expect("update");
    assert_eq!(
        store.loader_config(a, &system.id).await.expect("get").map(|c| c.scripts),
        Some(vec!["other.js".into()])
    );
    assert!(matches!(store.delete_loader_config(b, &system.id).await, Err(StoreError::NotFound)));
    store.delete_loader_config(a, &system.id).await.expect("off");
    assert!(matches!(store.delete_loader_config(a, &system.id).await, Err(StoreError::NotFound)), "already off");
    store.put_loader_config(a, &changed).await.expect("on again");
    store.delete_system(a, &system.id).await.expect("the system goes");
    assert_eq!(store.loader_config(a, &system.id).await.expect("gone with it"), None);
}

async fn users_roles_and_tokens_stay_in_their_account<S: AccessStore>(store: &S, a: &AccountId, b: &AccountId) {
    let user = |account: &AccountId, email: &str| domain::User {
        id: domain::UserId::generate(),
        account_id: Some(account.clone()),
        email: email.into(),
        name: String::new(),
        role: domain::Role::Viewer,
    };
    let ann = user(a, "ann@a.example");
    let bob = user(b, "bob@b.example");
    store.create_user(&ann, None, 1).await.expect("ann");
    store.create_user(&bob, None, 1).await.expect("bob");
    assert!(matches!(store.create_user(&user(b, "ANN@a.example"), None, 1).await, Err(StoreError::Conflict(_))));
    assert_eq!(
        store.users(a).await.expect("users").iter().map(|u| u.email.as_str()).collect::<Vec<_>>(),
        ["ann@a.example"]
    );
    assert!(matches!(store.user(b, &ann.id).await, Err(StoreError::NotFound)));
    assert!(matches!(store.set_role(b, &ann.id, domain::Role::Owner).await, Err(StoreError::NotFound)));
    store.set_role(a, &ann.id, domain::Role::Admin).await.expect("role");
    assert_eq!(store.user(a, &ann.id).await.expect("ann").role, domain::Role::Admin);

    assert_eq!(store.preference(&ann.id, "connections.columns").await.expect("pref"), None);
    store.set_preference(&ann.id, "connections.columns", "a,b").await.expect("set");
    store.set_preference(&ann.id, "connections.columns", "b").await.expect("replace");
    assert_eq!(store.preference(&ann.id, "connections.columns").await.expect("pref").as_deref(), Some("b"));
    assert_eq!(store.preference(&bob.id, "connections.columns").await.expect("pref"), None, "per user");
    store.create_api_token("tok_ann", &ann.id, "ci", "hash-ann", 5).await.expect("token");
    assert_eq!(store.api_token_owner("hash-ann", 6).await.expect("owner").user.id, ann.id);
    assert!(matches!(store.revoke_api_token(&bob.id, "tok_ann", 7).await, Err(StoreError::NotFound)));
    store.revoke_api_token(&ann.id, "tok_ann", 7).await.expect("revoke");
    assert!(
        matches!(store.api_token_owner("hash-ann", 8).await, Err(StoreError::NotFound)),
        "revoked tokens stop working"
    );
    let listed = store.api_tokens(&ann.id).await.expect("tokens");
    assert_eq!((listed.len(), listed[0].revoked_at), (1, Some(7)));

    // Ending a user's sessions (a password change) keeps the one named, and no one else's.
    let session = |hash: &str, user: &domain::UserId, at: i64| store::NewSession {
        id_hash: hash.into(),
        handle: format!("ses_{hash}"),
        user: user.clone(),
        csrf_token: "csrf".into(),
        created_at: at,
        expires_at: 1_000,
        remote_addr: Some("203.0.113.7".into()),
        user_agent: Some("Firefox".into()),
        via_sso: false,
        account: None,
    };
    for (i, (hash, user)) in
        [("s-ann-1", &ann.id), ("s-ann-2", &ann.id), ("s-ann-3", &ann.id), ("s-bob", &bob.id)].into_iter().enumerate()
    {
        store.create_session(&session(hash, user, 10 + i as i64)).await.expect("session");
    }
    // Each user lists their own live sessions, newest first, and ends one by its handle only.
    let listed = store.sessions_of(&ann.id, 11).await.expect("sessions");
    let handles: Vec<&str> = listed.iter().map(|s| s.handle.as_str()).collect();
    assert_eq!(handles, ["ses_s-ann-3", "ses_s-ann-2", "ses_s-ann-1"]);
    assert_eq!(
        (listed[0].remote_addr.as_deref(), listed[0].user_agent.as_deref()),
        (Some("203.0.113.7"), Some("Firefox"))
    );
    assert!(store.sessions_of(&ann.id, 1_000).await.expect("none live").is_empty(), "expired ones are not listed");
    assert!(
        matches!(store.end_session(&bob.id, "ses_s-ann-3").await, Err(StoreError::NotFound)),
        "not another user's session"
    );
    store.end_session(&ann.id, "ses_s-ann-3").await.expect("end one");
    assert!(matches!(store.session("s-ann-3", 11).await, Err(StoreError::NotFound)));
    store.create_session(&session("s-ann-3", &ann.id, 13)).await.expect("again");
    assert_eq!(store.end_sessions(&ann.id, Some("s-ann-1")).await.expect("end"), 2);
    assert!(store.session("s-ann-1", 11).await.is_ok(), "the session that asked stays");
    assert!(matches!(store.session("s-ann-2", 11).await, Err(StoreError::NotFound)));
    assert!(store.session("s-bob", 11).await.is_ok(), "another user's session stays");
    assert_eq!(store.end_sessions(&ann.id, None).await.expect("end all"), 1);
    assert!(matches!(store.session("s-ann-1", 11).await, Err(StoreError::NotFound)));

    // Sign-in attempts: free ones, then the lock a failure sets, taken before the check; a
    // success gives an attempt back; concurrent takers never get past the lock together.
    let throttle = store::Throttle { free: 2, first_lock_ms: 1_000, max_lock_ms: 8_000, forget_after_ms: 100_000 };
    for _ in 0..3 {
        assert_eq!(store.take_sign_in_attempt("k", 100, throttle).await.expect("take"), store::Attempt::Allowed);
    }
    assert_eq!(
        store.take_sign_in_attempt("k", 200, throttle).await.expect("take"),
        store::Attempt::Locked { until: 1_100 },
        "the third attempt set the lock a third failure earns"
    );
    assert_eq!(store.take_sign_in_attempt("k", 1_100, throttle).await.expect("take"), store::Attempt::Allowed);
    assert_eq!(
        store.take_sign_in_attempt("k", 1_200, throttle).await.expect("take"),
        store::Attempt::Locked { until: 3_100 }
    );
    store.forgive_sign_in("k", false).await.expect("forgive one");
    assert_eq!(
        store.take_sign_in_attempt("k", 1_200, throttle).await.expect("take"),
        store::Attempt::Allowed,
        "lock lifted"
    );
    store.forgive_sign_in("k", true).await.expect("clear");
    assert_eq!(store.take_sign_in_attempt("k", 1_300, throttle).await.expect("take"), store::Attempt::Allowed);
    assert_eq!(store.take_sign_in_attempt("k", 200_000, throttle).await.expect("a day later"), store::Attempt::Allowed);
    let takers: Vec<_> = (0..12).map(|_| store.take_sign_in_attempt("burst", 500, throttle)).collect();
    let allowed = futures_util::future::join_all(takers)
        .await
        .into_iter()
        .filter(|a| matches!(a, Ok(store::Attempt::Allowed)))
        .count();
    assert_eq!(allowed, 3, "two free and the one that locks, however many arrive at once");

    // Remembered browsers: per user, for a while, forgotten on demand.
    store.remember_device("dev-ann", &ann.id, 1_000).await.expect("remember");
    assert!(store.device_known("dev-ann", &ann.id, 500).await.expect("known"));
    assert!(!store.device_known("dev-ann", &ann.id, 2_000).await.expect("too old"));
    assert!(!store.device_known("dev-ann", &bob.id, 0).await.expect("not bob's"));
    store.forget_devices(&ann.id).await.expect("forget");
    assert!(!store.device_known("dev-ann", &ann.id, 0).await.expect("forgotten"));

    assert!(matches!(store.delete_user(b, &ann.id).await, Err(StoreError::NotFound)));
    store.delete_user(a, &ann.id).await.expect("delete");
    assert!(store.users(a).await.expect("users").is_empty());
    assert!(store.api_tokens(&ann.id).await.expect("tokens").is_empty(), "tokens go with the user");
}

async fn deployments_are_claimed_once_resume_after_a_lost_lease_and_finish<
    S: DeploymentStore + ConnectionStore + CatalogStore,
>(
    store: &S,
    a: &AccountId,
    b: &AccountId,
) {
    use domain::{
        BundleId, BundleInfo, CacheControl, Deployment, DeploymentId, DeploymentStatus, ResourceName, TargetStatus,
    };
    let system = domain::System { id: SystemId::generate(), account_id: a.clone(), name: "Sys".into(), created_at: 0 };
    store.insert_system(&system).await.expect("system");
    let env = store.environments(a).await.expect("envs")[0].id.clone();
    let one = new_connection(a, "one", "Org 1", "1@o.example", 1);
    let two = new_connection(a, "two", "Org 2", "2@o.example", 2);
    for c in [&one, &two] {
        store.insert(c, &NewSecrets::default()).await.expect("connection");
        store.bind(a, &c.id, &system.id, &env, 3).await.expect("bind");
    }
    store.bind(a, &one.id, &system.id, &env, 4).await.expect("binding twice is fine");
    assert!(store.bind(b, &one.id, &system.id, &env, 4).await.is_err(), "another account's ids bind nothing");
    assert_eq!(store.targets_for(a, &system.id, &env).await.expect("targets").len(), 2);
    assert!(store.targets_for(b, &system.id, &env).await.expect("b").is_empty());

    let bundle = BundleInfo {
        id: BundleId::generate(),
        account_id: a.clone(),
        sha256: "ab".repeat(32),
        size: 3,
        files: vec!["a.js".into(), "b.css".into()],
        created_at: 5,
        created_by: "me@a.example".into(),
    };
    let saved = store.save_bundle(&bundle, b"zip").await.expect("bundle");
    let again =
        store.save_bundle(&BundleInfo { id: BundleId::generate(), ..bundle.clone() }, b"zip").await.expect("same");
    assert_eq!(again.id, saved.id, "the same content is stored once");
    assert_eq!(store.bundle_bytes(&saved.id).await.expect("bytes"), b"zip");
    assert_eq!(store.bundle(a, &saved.id).await.expect("info").files, ["a.js", "b.css"]);
    assert!(store.bundle(b, &saved.id).await.is_err());

    let deployment = Deployment {
        id: DeploymentId::generate(),
        account_id: a.clone(),
        system_id: system.id.clone(),
        environment_id: env.clone(),
        bundle_id: saved.id.clone(),
        resource_name: ResourceName::parse("Player").expect("name"),
        cache_control: CacheControl::Private,
        status: DeploymentStatus::Running,
        created_at: 10,
        created_by: "me@a.example".into(),
        finished_at: None,
        redeploy_of: None,
        with_loader: true,
        rollout: None,
        wave: 0,
        note: None,
        overwrite_drift: false,
    };
    store.create_deployment(&deployment, &[one.id.clone(), two.id.clone()], &[]).await.expect("deployment");
    // Two workers: each target goes to exactly one.
    let first = store.claim_targets("worker-1", 20, 1_000, 1).await.expect("claim");
    let second = store.claim_targets("worker-2", 20, 1_000, 10).await.expect("claim");
    assert_eq!((first.len(), second.len()), (1, 1));
    assert_ne!(first[0].target.connection_id, second[0].target.connection_id);
    assert!(store.claim_targets("worker-3", 21, 1_000, 10).await.expect("none").is_empty(), "nothing left to claim");
    // worker-1 retries later; worker-2 dies; after its lease another worker takes over.
    let retry = TargetOutcome::Retry { error: "503".into(), not_before: 500 };
    assert!(
        store
            .finish_target(&deployment.id, &first[0].target.connection_id, "worker-1", &retry, 30)
            .await
            .expect("retry")
    );
    assert!(store.claim_targets("worker-3", 100, 1_000, 10).await.expect("not yet").is_empty(), "retries wait");
    assert_eq!(store.next_due().await.expect("due"), Some(500));
    let taken = store.claim_targets("worker-3", 1_100, 1_000, 10).await.expect("claim after the lease");
    assert_eq!(taken.len(), 2, "the retried target is due and worker-2's lease ran out");
    assert!(taken.iter().any(|c| c.target.attempts == 2));
    let done = |n: u32| TargetOutcome::Done {
        status: TargetStatus::Succeeded,
        action: "created".into(),
        resource_id: format!("081{n}"),
        url: "/resource/1/Player".into(),
        loader: Some(format!("deployed v{n}")),
        baseline: None,
    };
    // The dead worker's late answer is ignored: its lease is gone.
    assert!(
        !store
            .finish_target(&deployment.id, &second[0].target.connection_id, "worker-2", &done(9), 1_200)
            .await
            .expect("late")
    );
    for (i, c) in taken.iter().enumerate() {
        let outcome = if i == 0 { done(1) } else { TargetOutcome::Failed { error: "INSUFFICIENT_ACCESS".into() } };
        assert!(
            store
                .finish_target(&deployment.id, &c.target.connection_id, "worker-3", &outcome, 1_300)
                .await
                .expect("finish")
        );
    }
    let (finished, targets) = store.deployment(a, &deployment.id).await.expect("get");
    assert_eq!((finished.status, finished.finished_at), (DeploymentStatus::Failed, Some(1_300)));
    assert_eq!(targets.iter().filter(|t| t.status == TargetStatus::Failed).count(), 1);
    assert!(finished.with_loader, "the loader choice is kept");
    assert_eq!(targets.iter().filter_map(|t| t.loader.as_deref()).collect::<Vec<_>>(), ["deployed v1"]);
    assert!(
        targets
            .iter()
            .all(|t| t.instance_url.as_deref() == Some("https://acme.my.salesforce.com") && t.org_name.is_some()),
        "each target carries its connection's org name and instance"
    );
    assert!(store.deployment(b, &deployment.id).await.is_err());
    let listed = store.deployments(a, Some(&system.id), None, None, 10).await.expect("list");
    assert_eq!((listed.len(), listed[0].1.succeeded, listed[0].1.failed), (1, 1, 1));
    assert_eq!(store.deployments(a, None, None, Some(&one.id), 10).await.expect("by connection").len(), 1);
    let stranger = ConnectionId::generate();
    assert!(store.deployments(a, None, None, Some(&stranger), 10).await.expect("none").is_empty());
    assert!(store.deployments(b, None, None, None, 10).await.expect("b").is_empty());
}

/// A transaction's statements commit together or not at all: dropped, or broken by a failing
/// statement, it leaves nothing; committed, it leaves everything.
async fn a_transaction_commits_whole_or_not_at_all(store: &Store, a: &AccountId) {
    let entry = |action: &str, id: &ConnectionId| domain::AuditEntry {
        account_id: Some(a.clone()),
        at: 1,
        actor: "owner@acme.example".into(),
        actor_kind: domain::ActorKind::User,
        action: action.into(),
        target_kind: "connection".into(),
        target_id: Some(id.as_str().into()),
        target_label: None,
        detail: None,
        remote_addr: None,
    };
    let logged = |id: &ConnectionId| {
        let query = AuditQuery { action: None, target_id: Some(id.as_str().into()), before: None, limit: 10 };
        async move { store.audit(a, &query).await.expect("audit").into_iter().map(|(_, e)| e.action).collect::<Vec<_>>() }
    };
    let c = new_connection(a, "Tx", "Tx Org", "tx@acme.example", 1);

    let mut tx = store.begin().await.expect("begin");
    tx.insert_connection(&c, &NewSecrets::default()).await.expect("insert");
    tx.record(&entry("connection.created", &c.id)).await.expect("record");
    drop(tx);
    assert!(matches!(store.get(a, &c.id).await, Err(StoreError::NotFound)), "dropped: no connection");
    assert!(logged(&c.id).await.is_empty(), "dropped: no audit entry");

    let mut tx = store.begin().await.expect("begin");
    tx.record(&entry("connection.created", &c.id)).await.expect("record");
    tx.insert_connection(&c, &NewSecrets::default()).await.expect("insert");
    let twice = tx.insert_connection(&c, &NewSecrets::default()).await;
    assert!(twice.is_err(), "the same connection twice fails");
    drop(tx);
    assert!(matches!(store.get(a, &c.id).await, Err(StoreError::NotFound)), "failed: no connection");
    assert!(logged(&c.id).await.is_empty(), "failed: no audit entry");

    let mut tx = store.begin().await.expect("begin");
    tx.insert_connection(&c, &NewSecrets::default()).await.expect("insert");
    tx.record(&entry("connection.created", &c.id)).await.expect("record");
    tx.commit().await.expect("commit");
    assert_eq!(store.get(a, &c.id).await.expect("committed"), c);
    assert_eq!(logged(&c.id).await, ["connection.created"]);

    let mut tx = store.begin().await.expect("begin");
    tx.delete_connection(a, &c.id).await.expect("delete");
    drop(tx);
    assert_eq!(store.get(a, &c.id).await.expect("a dropped delete keeps it"), c);
    let mut tx = store.begin().await.expect("begin");
    tx.delete_connection(a, &c.id).await.expect("delete");
    tx.record(&entry("connection.deleted", &c.id)).await.expect("record");
    tx.commit().await.expect("commit");
    assert!(matches!(store.get(a, &c.id).await, Err(StoreError::NotFound)));
    assert_eq!(logged(&c.id).await, ["connection.deleted", "connection.created"]);
}

/// Two-factor sign-in's storage (issue #13): a secret sealed and replaced until confirmed, each
/// code step and recovery code accepted once, the account's requirement reaching its people's
/// sessions, and half-done sign-ins that work once and expire.
async fn second_factors_are_used_once_and_required_per_account<S: AccessStore + CatalogStore>(
    store: &S,
    a: &AccountId,
) {
    let user = |email: &str| domain::User {
        id: domain::UserId::generate(),
        account_id: Some(a.clone()),
        email: email.into(),
        name: String::new(),
        role: domain::Role::Editor,
    };
    let (ann, cy) = (user("ann2fa@a.example"), user("cy2fa@a.example"));
    store.create_user(&ann, Some("hash"), 1).await.expect("ann");
    store.create_user(&cy, Some("hash"), 1).await.expect("cy");
    assert!(store.two_factor(&ann.id).await.expect("none").is_none());
    store.begin_two_factor(&ann.id, &vault::TotpSecret::new("FIRSTSECRET"), 10).await.expect("begin");
    store.begin_two_factor(&ann.id, &vault::TotpSecret::new("SECONDSECRET"), 11).await.expect("a new start replaces");
    let pending = store.two_factor(&ann.id).await.expect("read").expect("pending");
    assert_eq!((pending.secret.expose_secret(), pending.confirmed_at), ("SECONDSECRET", None));
    assert!(!store.use_totp_step(&ann.id, 5).await.expect("step"), "no code works before confirming");
    store.confirm_two_factor(&ann.id, 5, &["r1".into(), "r2".into()], 12).await.expect("confirm");
    assert!(matches!(
        store.begin_two_factor(&ann.id, &vault::TotpSecret::new("THIRD"), 13).await,
        Err(StoreError::Conflict(_))
    ));
    let on = store.two_factor(&ann.id).await.expect("read").expect("on");
    assert_eq!((on.confirmed_at, on.last_step, on.recovery_left), (Some(12), 5, 2));
    assert!(!store.use_totp_step(&ann.id, 5).await.expect("step"), "the confirming step is used");
    assert!(!store.use_totp_step(&ann.id, 4).await.expect("step"), "an older step");
    assert!(store.use_totp_step(&ann.id, 6).await.expect("step"));
    assert!(!store.use_totp_step(&ann.id, 6).await.expect("step"), "once");
    assert!(store.use_recovery_code(&ann.id, "r1", 20).await.expect("code"));
    assert!(!store.use_recovery_code(&ann.id, "r1", 21).await.expect("code"), "once");
    assert!(!store.use_recovery_code(&cy.id, "r2", 21).await.expect("code"), "another person's code");
    assert_eq!(store.two_factor(&ann.id).await.expect("read").expect("on").recovery_left, 1);

    // The account's requirement reaches sessions of people without a second factor.
    let session = |user: &domain::User, id: &str| store::NewSession {
        id_hash: id.into(),
        handle: format!("ses_{id}"),
        user: user.id.clone(),
        csrf_token: "csrf".into(),
        created_at: 1,
        expires_at: 1_000,
        remote_addr: None,
        user_agent: None,
        via_sso: false,
        account: None,
    };
    store.create_session(&session(&ann, "s-ann")).await.expect("session");
    store.create_session(&session(&cy, "s-cy")).await.expect("session");
    assert!(!store.session("s-cy", 2).await.expect("live").must_enrol);
    store.set_two_factor_required(a, true).await.expect("require");
    assert!(store.account(a).await.expect("account").two_factor_required);
    assert!(store.session("s-cy", 2).await.expect("live").must_enrol);
    assert!(!store.session("s-ann", 2).await.expect("live").must_enrol);
    assert!(store.remove_two_factor(&ann.id).await.expect("remove"));
    assert!(!store.remove_two_factor(&ann.id).await.expect("again"));
    assert!(store.session("s-ann", 2).await.expect("live").must_enrol);

    // Half-done sign-ins: read while live, taken once, gone when expired.
    store.save_pending_sign_in("p1", "second_factor", "{\"user\":1}", 100).await.expect("save");
    assert_eq!(store.pending_sign_in("p1", "second_factor", 50).await.expect("read"), "{\"user\":1}");
    assert!(matches!(store.pending_sign_in("p1", "sso", 50).await, Err(StoreError::NotFound)), "another kind");
    assert_eq!(store.take_pending_sign_in("p1", "second_factor", 50).await.expect("take"), "{\"user\":1}");
    assert!(matches!(store.take_pending_sign_in("p1", "second_factor", 50).await, Err(StoreError::NotFound)));
    store.save_pending_sign_in("p2", "second_factor", "x", 100).await.expect("save");
    assert!(matches!(store.pending_sign_in("p2", "second_factor", 100).await, Err(StoreError::NotFound)), "expired");
}

/// Single sign-on's storage (issue #13): an account's provider with its secret sealed, domains
/// that belong to one account, and provider subjects found again.
async fn single_sign_on_settings_domains_and_identities_stay_in_their_account<S: AccessStore + CatalogStore>(
    store: &S,
    a: &AccountId,
    b: &AccountId,
) {
    assert!(store.sso_config(a).await.expect("none").is_none());
    let config = |issuer: &str, secret: &str| store::SsoConfig {
        issuer: issuer.into(),
        client_id: "lightbridge".into(),
        client_secret: vault::SsoClientSecret::new(secret),
        role_claim: Some("groups".into()),
        default_role: domain::Role::Editor,
        sso_only: true,
        break_glass_email: Some("ignored@a.example".into()),
    };
    store.set_sso_config(a, &config("https://idp.a.example", "first"), 1).await.expect("set");
    store.set_break_glass(a, Some("owner@a.example")).await.expect("break glass");
    store.set_sso_config(a, &config("https://idp2.a.example", "second"), 2).await.expect("replace");
    let found = store.sso_config(a).await.expect("read").expect("found");
    assert_eq!(
        (found.issuer.as_str(), found.client_secret.expose_secret(), found.default_role, found.sso_only),
        ("https://idp2.a.example", "second", domain::Role::Editor, true)
    );
    assert_eq!(found.break_glass_email.as_deref(), Some("owner@a.example"), "kept across a new configuration");
    assert!(matches!(store.set_break_glass(b, None).await, Err(StoreError::NotFound)), "B has none");

    store.add_sso_domain(a, "a.example", 1).await.expect("domain");
    store.add_sso_domain(a, "a.example", 2).await.expect("adding it again is fine");
    assert!(matches!(store.add_sso_domain(b, "a.example", 3).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.account_for_domain("a.example").await.expect("lookup").as_ref(), Some(a));
    store.add_sso_domain(b, "b.example", 3).await.expect("domain");
    assert_eq!(store.account_for_domain("b.example").await.expect("lookup"), None, "B has no provider to lead to");
    assert_eq!(store.sso_domains(a).await.expect("domains"), ["a.example"]);

    // Domain claims (an account proving an email domain by DNS): per account, idempotent, and
    // proving one routes it in one step — unless another account has it routed already.
    let first = store.claim_sso_domain(a, "corp.example", "tok-a", 10).await.expect("claim");
    let again = store.claim_sso_domain(a, "corp.example", "tok-other", 11).await.expect("claim again");
    assert_eq!((again.token.as_str(), again.created_at), ("tok-a", 10), "the first claim's token stays");
    assert_eq!(first, again);
    store.claim_sso_domain(b, "corp.example", "tok-b", 12).await.expect("B may claim it too");
    store.record_domain_check(a, "corp.example", 13, "no TXT record yet").await.expect("check");
    let claim = store.sso_domain_claim(a, "corp.example").await.expect("claim");
    assert_eq!((claim.checked_at, claim.last_result.as_deref()), (Some(13), Some("no TXT record yet")));
    assert!(matches!(store.record_domain_check(a, "none.example", 13, "x").await, Err(StoreError::NotFound)));
    store.prove_sso_domain(a, "corp.example", 14).await.expect("proved");
    assert!(matches!(store.sso_domain_claim(a, "corp.example").await, Err(StoreError::NotFound)), "claim gone");
    assert!(matches!(store.prove_sso_domain(b, "corp.example", 15).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.sso_domain_claims(b).await.expect("claims").len(), 1, "B's claim is left as it was");
    store.prove_sso_domain(a, "a.example", 16).await.expect("an operator's domain proved again");
    let routed = store.routed_domains(a).await.expect("routed");
    let how: Vec<_> = routed.iter().map(|d| (d.domain.as_str(), d.verified_by.as_str())).collect();
    assert_eq!(how, [("a.example", "dns"), ("corp.example", "dns")]);
    store.delete_sso_domain_claim(b, "corp.example").await.expect("withdrawn");
    assert!(matches!(store.delete_sso_domain_claim(b, "corp.example").await, Err(StoreError::NotFound)));
    store.remove_sso_domain(a, "corp.example").await.expect("unrouted");

    let ann = domain::User {
        id: domain::UserId::generate(),
        account_id: Some(a.clone()),
        email: "ann.sso@a.example".into(),
        name: String::new(),
        role: domain::Role::Viewer,
    };
    store.create_user(&ann, None, 1).await.expect("user");
    store.link_sso_identity("https://idp2.a.example", "sub-1", &ann.id).await.expect("link");
    store.link_sso_identity("https://idp2.a.example", "sub-1", &ann.id).await.expect("again");
    assert_eq!(store.sso_identity("https://idp2.a.example", "sub-1").await.expect("find"), Some(ann.id.clone()));
    assert_eq!(store.sso_identity("https://other.example", "sub-1").await.expect("find"), None, "per issuer");

    store.delete_sso_config(a).await.expect("delete");
    assert!(store.sso_config(a).await.expect("read").is_none());
    assert_eq!(store.account_for_domain("a.example").await.expect("lookup"), None, "its domains go with it");
}

/// People in several accounts (issue #13): memberships with a role each, sessions and tokens
/// acting in one account, removal from one account leaving the others, and invitations that
/// work once.
async fn people_belong_to_several_accounts_with_a_role_in_each<S: AccessStore + CatalogStore>(
    store: &S,
    a: &AccountId,
    b: &AccountId,
) {
    let dee = domain::User {
        id: domain::UserId::generate(),
        account_id: Some(a.clone()),
        email: "dee@a.example".into(),
        name: String::new(),
        role: domain::Role::Viewer,
    };
    store.create_user(&dee, Some("hash"), 1).await.expect("dee");
    store.add_membership(&dee.id, b, domain::Role::Admin, 2).await.expect("joins B");
    assert!(matches!(store.add_membership(&dee.id, b, domain::Role::Admin, 3).await, Err(StoreError::Conflict(_))));
    let of = store.memberships_of(&dee.id).await.expect("memberships");
    assert_eq!(
        of.iter().map(|m| (&m.account, m.role)).collect::<Vec<_>>(),
        [(a, domain::Role::Viewer), (b, domain::Role::Admin)]
    );
    assert_eq!(store.user(b, &dee.id).await.expect("in B").role, domain::Role::Admin);
    assert!(store.users(b).await.expect("B's people").iter().any(|u| u.id == dee.id));

    // A session acts in its person's home account until switched, then with the role there.
    let session = store::NewSession {
        id_hash: "s-dee".into(),
        handle: "ses_dee".into(),
        user: dee.id.clone(),
        csrf_token: "csrf".into(),
        created_at: 1,
        expires_at: 1_000,
        remote_addr: None,
        user_agent: None,
        via_sso: false,
        account: None,
    };
    store.create_session(&session).await.expect("session");
    let live = store.session("s-dee", 2).await.expect("live");
    assert_eq!((live.user.account_id.as_ref(), live.user.role), (Some(a), domain::Role::Viewer));
    store.set_session_account("s-dee", b).await.expect("switch");
    let live = store.session("s-dee", 2).await.expect("live");
    assert_eq!((live.user.account_id.as_ref(), live.user.role), (Some(b), domain::Role::Admin));
    let stranger = AccountId::generate();
    assert!(matches!(store.set_session_account("s-dee", &stranger).await, Err(StoreError::NotFound)));

    // Out of their home account: the session acting in B stays, the home moves to B.
    store.delete_user(a, &dee.id).await.expect("removed from A");
    assert!(matches!(store.user(a, &dee.id).await, Err(StoreError::NotFound)));
    assert_eq!(store.session("s-dee", 2).await.expect("still in B").user.role, domain::Role::Admin);
    let (home, _) = store.credentials("dee@a.example").await.expect("person");
    assert_eq!((home.account_id.as_ref(), home.role), (Some(b), domain::Role::Admin));
    // Out of the last one: the person goes.
    store.delete_user(b, &dee.id).await.expect("removed from B");
    assert!(matches!(store.credentials("dee@a.example").await, Err(StoreError::NotFound)));

    // Invitations: live ones found by their token's hash, accepted once, withdrawn by their account only.
    let invitation = store::Invitation {
        id: "inv_1".into(),
        account: a.clone(),
        email: "eve@a.example".into(),
        role: domain::Role::Editor,
        invited_by: "owner@a.example".into(),
        created_at: 10,
        expires_at: 100,
    };
    store.create_invitation(&invitation, "tok-hash").await.expect("invite");
    let (found, account_name) = store.invitation("tok-hash", 50).await.expect("live");
    assert_eq!((found, account_name.is_empty()), (invitation.clone(), false));
    assert!(matches!(store.invitation("tok-hash", 100).await, Err(StoreError::NotFound)), "expired");
    assert_eq!(store.invitations(a, 50).await.expect("list").len(), 1);
    assert!(store.invitations(b, 50).await.expect("list").is_empty());
    assert!(matches!(store.withdraw_invitation(b, "inv_1").await, Err(StoreError::NotFound)), "another account's");
    assert!(store.accept_invitation("inv_1", 60).await.expect("accept"));
    assert!(!store.accept_invitation("inv_1", 61).await.expect("again"), "once");
    assert!(matches!(store.invitation("tok-hash", 62).await, Err(StoreError::NotFound)));
}

async fn baselines_and_drifted_targets_wait_for_a_person<S: ConnectionStore + DeploymentStore + CatalogStore>(
    store: &S,
    a: &AccountId,
    b: &AccountId,
) {
    use domain::{
        Baseline, BundleId, BundleInfo, CacheControl, Deployment, DeploymentId, DeploymentStatus as S, Drift,
        ResourceName, TargetStatus,
    };
    let system =
        domain::System { id: SystemId::generate(), account_id: a.clone(), name: "Drift".into(), created_at: 0 };
    store.insert_system(&system).await.expect("system");
    let env = store.environments(a).await.expect("envs")[0].id.clone();
    let c = new_connection(a, "drift", "Org", "d@o.example", 1);
    store.insert(&c, &NewSecrets::default()).await.expect("insert");
    assert_eq!(store.connections_to_org(a, "00D5g0000012AbCEAU").await.expect("org").len(), 1);
    assert!(store.connections_to_org(b, "00D5g0000012AbCEAU").await.expect("org").is_empty(), "another account's");
    let bundle = BundleInfo {
        id: BundleId::generate(),
        account_id: a.clone(),
        sha256: "ef".repeat(32),
        size: 3,
        files: vec!["a.js".into()],
        created_at: 0,
        created_by: "me@a.example".into(),
    };
    let bundle = store.save_bundle(&bundle, b"zip").await.expect("bundle");
    let name = ResourceName::parse("Drift").expect("name");
    let deployment = |overwrite_drift| Deployment {
        id: DeploymentId::generate(),
        account_id: a.clone(),
        system_id: system.id.clone(),
        environment_id: env.clone(),
        bundle_id: bundle.id.clone(),
        resource_name: name.clone(),
        cache_control: CacheControl::Private,
        status: S::Running,
        created_at: 0,
        created_by: "me@a.example".into(),
        finished_at: None,
        redeploy_of: None,
        with_loader: false,
        rollout: None,
        wave: 0,
        note: None,
        overwrite_drift,
    };
    let baseline = |d: &Deployment, modstamp: i64| Baseline {
        account_id: a.clone(),
        org_id: "00D5g0000012AbCEAU".into(),
        resource_name: name.clone(),
        sha256: "ef".repeat(32),
        content_type: "application/zip".into(),
        cache_control: "Private".into(),
        body_length: 3,
        modstamp_ms: modstamp,
        resource_id: "081xx".into(),
        connection_id: c.id.clone(),
        deployment_id: d.id.clone(),
        published_at: modstamp,
        drift: None,
        scanned_at: None,
    };
    let done = |b: Baseline| store::TargetOutcome::Done {
        status: TargetStatus::Succeeded,
        action: "updated".into(),
        resource_id: "081xx".into(),
        url: "/resource/1/Drift".into(),
        loader: None,
        baseline: Some(Box::new(b)),
    };
    // A publish records the baseline with its outcome; it is the account's alone.
    let first = deployment(true);
    store.create_deployment(&first, std::slice::from_ref(&c.id), &[]).await.expect("deployment");
    let read = store.deployment(a, &first.id).await.expect("read").0;
    assert!(read.overwrite_drift, "the choice round-trips");
    assert_eq!(store.claim_targets("w", 10, 60_000, 5).await.expect("claim").len(), 1);
    assert!(store.finish_target(&first.id, &c.id, "w", &done(baseline(&first, 100)), 20).await.expect("finish"));
    let kept = store.baseline(a, "00D5g0000012AbCEAU", &name).await.expect("baseline").expect("some");
    let lower = ResourceName::parse("drift").expect("name");
    assert_eq!(kept, Baseline { resource_name: lower, ..baseline(&first, 100) }, "kept under the name's lower case");
    assert!(store.baseline(b, "00D5g0000012AbCEAU", &name).await.expect("baseline").is_none());
    assert!(store.baselines(b).await.expect("baselines").is_empty());
    // A scan's finding and its time; due again only after.
    let drift = Drift {
        what: "its body changed".into(),
        by: Some("Ada".into()),
        at: Some(150),
        found_at: 160,
        seen_modstamp: Some(150),
    };
    // A finding about an older baseline (a publish landed since) changes nothing.
    assert!(!store.set_drift(a, "00D5g0000012AbCEAU", &name, Some(&drift), Some(500), 99).await.expect("stale"));
    assert!(store.baselines(a).await.expect("baselines")[0].drift.is_none());
    // Names compare without case, as Salesforce's.
    let upper = ResourceName::parse("DRIFT").expect("name");
    assert!(store.set_drift(a, "00D5g0000012AbCEAU", &upper, Some(&drift), Some(500), 100).await.expect("drift"));
    let kept = store.baselines(a).await.expect("baselines");
    assert_eq!((kept[0].drift.as_ref(), kept[0].scanned_at), (Some(&drift), Some(500)));
    // A scheduled scan is claimed by one instance for its interval.
    assert!(store.claim_drift_scans("one", 400, 500, 10_000, 10).await.expect("claim").is_empty(), "not due");
    assert_eq!(store.claim_drift_scans("one", 600, 500, 10_000, 10).await.expect("claim"), vec![a.clone()]);
    assert!(
        store.claim_drift_scans("two", 600, 600, 10_000, 10).await.expect("claim").is_empty(),
        "another instance leaves it to the first"
    );
    // The first stopped without scanning: once its claim lapses, the account is another's.
    assert_eq!(store.claim_drift_scans("two", 600, 10_000, 20_000, 10).await.expect("claim"), vec![a.clone()]);
    store.touch_scanned(a, "00D5g0000012AbCEAU", 700).await.expect("touch");
    assert!(
        store.claim_drift_scans("three", 600, 30_000, 40_000, 10).await.expect("claim").is_empty(),
        "an org asked (even in vain) waits its turn"
    );
    assert_eq!(store.baselines(a).await.expect("baselines")[0].drift.as_ref(), Some(&drift), "and keeps its finding");
    // A drifted target waits for a person: never claimed, the deployment stays open.
    let second = deployment(false);
    store.create_deployment(&second, std::slice::from_ref(&c.id), &[]).await.expect("deployment");
    let claimed = store.claim_targets("w", 30, 60_000, 5).await.expect("claim");
    assert!(!claimed[0].target.overwrite);
    let outcome = store::TargetOutcome::Drifted { drift: drift.clone() };
    assert!(store.finish_target(&second.id, &c.id, "w", &outcome, 40).await.expect("finish"));
    let (read, targets) = store.deployment(a, &second.id).await.expect("read");
    assert_eq!((read.status, read.finished_at), (S::Running, None));
    assert_eq!(
        (targets[0].status, targets[0].drift_by.as_deref(), targets[0].drift_at),
        (TargetStatus::Drifted, Some("Ada"), Some(150))
    );
    assert_eq!(targets[0].error.as_deref(), Some(format!("drifted: {}", drift.describe()).as_str()));
    assert!(store.claim_targets("w", 50, 60_000, 5).await.expect("claim").is_empty());
    assert_eq!(store.deployments(a, None, None, None, 1).await.expect("list")[0].1.drifted, 1);
    // Another account cannot answer it; overwritten, it runs again with the choice.
    assert_eq!(store.resolve_drifted(b, &second.id, None, true, 55).await.expect("resolve"), 0);
    assert_eq!(store.resolve_drifted(a, &second.id, None, true, 60).await.expect("resolve"), 1);
    let claimed = store.claim_targets("w", 70, 60_000, 5).await.expect("claim");
    assert!(claimed[0].target.overwrite, "claimed with the person's choice");
    assert!(store.finish_target(&second.id, &c.id, "w", &done(baseline(&second, 200)), 80).await.expect("finish"));
    let (read, _) = store.deployment(a, &second.id).await.expect("read");
    assert_eq!((read.status, read.finished_at), (S::Succeeded, Some(80)));
    let kept = store.baselines(a).await.expect("baselines");
    assert_eq!(
        (kept[0].modstamp_ms, kept[0].drift.as_ref(), &kept[0].deployment_id),
        (200, None, &second.id),
        "published over: clean"
    );
    // Skipped: the deployment ends.
    let third = deployment(false);
    store.create_deployment(&third, std::slice::from_ref(&c.id), &[]).await.expect("deployment");
    store.claim_targets("w", 90, 60_000, 5).await.expect("claim");
    assert!(store.finish_target(&third.id, &c.id, "w", &outcome, 95).await.expect("finish"));
    assert_eq!(
        store.resolve_drifted(a, &third.id, Some(std::slice::from_ref(&c.id)), false, 99).await.expect("skip"),
        1
    );
    let (read, targets) = store.deployment(a, &third.id).await.expect("read");
    assert_eq!((read.status, targets[0].status), (S::Succeeded, TargetStatus::Skipped));
    // What was published in the org is kept while a connection of the account reaches it, and
    // forgotten with the last one.
    let second_connection = new_connection(a, "drift too", "Org", "d@o.example", 2);
    store.insert(&second_connection, &NewSecrets::default()).await.expect("insert");
    store.delete(a, &c.id).await.expect("delete");
    assert_eq!(store.baselines(a).await.expect("baselines").len(), 1, "another connection reaches the org");
    store.delete(a, &second_connection.id).await.expect("delete");
    assert!(store.baselines(a).await.expect("baselines").is_empty(), "no connection reaches the org any more");
}

#[tokio::test]
async fn sqlite_passes_the_conformance_suite() {
    let (store, a, b) = sqlite().await;
    deployments_are_claimed_once_resume_after_a_lost_lease_and_finish(&store, &a, &b).await;
    let (store, a, b) = sqlite().await;
    systems_and_environments_belong_to_one_account(&store, &a, &b).await;
    let (store, a, b) = sqlite().await;
    users_roles_and_tokens_stay_in_their_account(&store, &a, &b).await;
    let (store, a, b) = sqlite().await;
    a_connection_round_trips_and_stays_in_its_account(&store, &a, &b).await;
    let (store, a, b) = sqlite().await;
    names_and_legacy_slots_are_unique(&store, &a, &b).await;
    let (store, a, _) = sqlite().await;
    search_sort_and_pages_work(&store, &a).await;
    let (store, a, _) = sqlite().await;
    a_short_search_counts_up_to_its_cap(&store, &a).await;
    let (store, a, b) = sqlite().await;
    filters_sorts_and_keyset_pages_agree(&store, &a, &b).await;
    let (store, a, _) = sqlite().await;
    rollouts_move_in_waves_and_only_from_what_was_read(&store, &a).await;
    let (store, a, b) = sqlite().await;
    baselines_and_drifted_targets_wait_for_a_person(&store, &a, &b).await;
    let (store, a, b) = sqlite().await;
    the_outbox_delivers_each_event_once_to_each_endpoint(&store, &a, &b).await;
    let (store, a, b) = sqlite().await;
    the_mail_outbox_queues_by_choice_and_sends_a_digest_whole(&store, &a, &b).await;
    let (store, a, _) = sqlite().await;
    tokens_rotate_atomically(&store, &a).await;
    let (store, a, _) = sqlite().await;
    statuses_change_through_observations_with_their_reason_and_audit(&store, &a).await;
    let (store, a, _) = sqlite().await;
    a_failing_streak_is_announced_once_and_only_from_logged_in(&store, &a).await;
    let (store, a, b) = sqlite().await;
    oauth_grants_are_dated_by_their_sign_in_and_kept_by_renewals(&store, &a, &b).await;
    let (store, a, _) = sqlite().await;
    concurrent_finishes_finish_the_deployment(&store, &a).await;
    let (store, a, _) = sqlite().await;
    a_transaction_commits_whole_or_not_at_all(&Store::from(store), &a).await;
    let (store, a, _) = sqlite().await;
    second_factors_are_used_once_and_required_per_account(&store, &a).await;
    let (store, a, b) = sqlite().await;
    single_sign_on_settings_domains_and_identities_stay_in_their_account(&store, &a, &b).await;
    let (store, a, b) = sqlite().await;
    people_belong_to_several_accounts_with_a_role_in_each(&store, &a, &b).await;
    let (store, a, b) = sqlite().await;
    loader_settings_belong_to_their_system(&store, &a, &b).await;
}

/// The last of many targets finishing at the same moment — one by one and in batches — still
/// finishes the deployment; a batch records only the targets its worker holds.
async fn concurrent_finishes_finish_the_deployment<
    S: DeploymentStore + CatalogStore + ConnectionStore + NotificationStore,
>(
    store: &S,
    a: &AccountId,
) {
    let system = domain::System { id: SystemId::generate(), account_id: a.clone(), name: "Race".into(), created_at: 0 };
    store.insert_system(&system).await.expect("system");
    let env = store.environments(a).await.expect("envs")[0].id.clone();
    let bundle = domain::BundleInfo {
        id: domain::BundleId::generate(),
        account_id: a.clone(),
        sha256: "ab".repeat(32),
        size: 1,
        files: vec!["a.js".into()],
        created_at: 0,
        created_by: "t".into(),
    };
    let bundle = store.save_bundle(&bundle, b"x").await.expect("bundle");
    let mut ids = Vec::new();
    for i in 0..40 {
        let c = new_connection(a, &format!("race {i}"), "Org", "r@o.example", i);
        store.insert(&c, &NewSecrets::default()).await.expect("insert");
        ids.push(c.id);
    }
    let d = domain::Deployment {
        id: domain::DeploymentId::generate(),
        account_id: a.clone(),
        system_id: system.id.clone(),
        environment_id: env.clone(),
        bundle_id: bundle.id.clone(),
        resource_name: domain::ResourceName::parse("Race").expect("name"),
        cache_control: domain::CacheControl::Private,
        status: domain::DeploymentStatus::Running,
        created_at: 0,
        created_by: "t".into(),
        finished_at: None,
        redeploy_of: None,
        with_loader: false,
        rollout: None,
        wave: 0,
        note: None,
        overwrite_drift: false,
    };
    // Another worker's deployment, whose targets a batch below names by mistake.
    let other = domain::Deployment { id: domain::DeploymentId::generate(), ..d.clone() };
    store.create_deployment(&other, &ids[..2], &[]).await.expect("other deployment");
    assert_eq!(store.claim_targets("other", 1, 60_000, 2).await.expect("claim").len(), 2);
    store.create_deployment(&d, &ids, &[]).await.expect("deployment");
    let claimed = store.claim_targets("racer", 1, 60_000, 100).await.expect("claim");
    assert_eq!(claimed.len(), 40);
    let done = TargetOutcome::Done {
        status: domain::TargetStatus::Succeeded,
        action: "created".into(),
        resource_id: "081000000000001AAA".into(),
        url: "/resource/1/Race".into(),
        loader: None,
        baseline: None,
    };
    // Half one by one, half in batches of five (as the worker records a burst), all at once.
    let (single, batched) = claimed.split_at(20);
    let finishes = single.iter().map(|c| store.finish_target(&d.id, &c.target.connection_id, "racer", &done, 2));
    let batches: Vec<Vec<Finish>> = batched
        .chunks(5)
        .map(|chunk| {
            let mut batch = vec![Finish {
                deployment: other.id.clone(),
                connection: ids[0].clone(),
                outcome: done.clone(),
                now: 2,
            }];
            batch.extend(chunk.iter().map(|c| Finish {
                deployment: d.id.clone(),
                connection: c.target.connection_id.clone(),
                outcome: done.clone(),
                now: 2,
            }));
            batch
        })
        .collect();
    let batch_finishes = batches.iter().map(|b| store.finish_targets("racer", b));
    let (singles, batches) =
        tokio::join!(futures_util::future::join_all(finishes), futures_util::future::join_all(batch_finishes));
    for done in singles {
        assert!(done.expect("finish"), "each finisher held its lease");
    }
    for recorded in batches {
        assert_eq!(recorded.expect("batch"), [false, true, true, true, true, true], "only the targets it holds");
    }
    let (finished, _) = store.deployment(a, &d.id).await.expect("deployment");
    assert_eq!(finished.status, domain::DeploymentStatus::Succeeded, "the last finisher finished it");
    // Its end is news once (#18), written by the transaction that ended it.
    let events = store.events(a, 100).await.expect("events");
    let ended: Vec<_> = events.iter().filter(|e| e.kind == domain::EventType::DeploymentSucceeded).collect();
    assert_eq!(ended.len(), 1, "{events:?}");
    assert_eq!(ended[0].data["deployment"]["id"], d.id.as_str());
    assert_eq!(ended[0].data["targets"]["succeeded"], 40);
    let (untouched, targets) = store.deployment(a, &other.id).await.expect("other");
    assert_eq!(untouched.status, domain::DeploymentStatus::Running);
    assert!(
        targets.iter().all(|t| t.status == domain::TargetStatus::Running),
        "another owner's targets are left alone"
    );
}

async fn the_mail_outbox_queues_by_choice_and_sends_a_digest_whole<S: NotificationStore + AccessStore>(
    store: &S,
    a: &AccountId,
    b: &AccountId,
) {
    use domain::{Event, EventType as T, MailPreferences, MailStatus, Role};
    use store::MailOutcome;
    let person = |account: &AccountId, email: &str, role: Role| domain::User {
        id: domain::UserId::generate(),
        account_id: Some(account.clone()),
        email: email.into(),
        name: email.split('@').next().unwrap_or_default().into(),
        role,
    };
    let ann = person(a, "ann@a.example", Role::Admin); // never chose: an admin's defaults
    let cat = person(a, "cat@a.example", Role::Editor); // drift, in a digest at 08:00
    let eve = person(a, "eve@a.example", Role::Owner); // chose nothing
    let dan = person(b, "dan@b.example", Role::Admin); // account B
    for u in [&ann, &cat, &eve, &dan] {
        store.create_user(u, None, 1).await.expect("user");
    }
    assert_eq!(store.mail_preferences(&ann.id).await.expect("prefs"), None);
    let digest = MailPreferences { events: vec![T::DriftFound], digest: true, digest_hour: 8, saved: true };
    store.set_mail_preferences(&cat.id, &digest, 1).await.expect("cat");
    let none = MailPreferences { events: Vec::new(), digest: false, digest_hour: 8, saved: true };
    store.set_mail_preferences(&eve.id, &none, 1).await.expect("eve");
    assert_eq!(store.mail_preferences(&cat.id).await.expect("prefs"), Some(digest.clone()));

    let day = 86_400_000;
    let t0 = 20_000 * day + 10 * 3_600_000; // 10:00 UTC
    let logged_out = Event::new(a, T::ConnectionLoggedOut, t0, serde_json::json!({"connection": {"name": "Prod"}}));
    let drift1 = Event::new(a, T::DriftFound, t0 + 1, serde_json::json!({"resource_name": "Player"}));
    let drift2 = Event::new(a, T::DriftFound, t0 + 2, serde_json::json!({"resource_name": "Loader"}));
    let theirs = Event::new(b, T::DriftFound, t0 + 3, serde_json::json!({}));
    for e in [&logged_out, &drift1, &drift2, &theirs] {
        store.record_event(e).await.expect("event");
    }
    let ann_mails = store.mails(&ann.id, a, 10).await.expect("ann");
    assert_eq!(
        ann_mails.iter().map(|m| m.event_type).collect::<Vec<_>>(),
        [T::ConnectionLoggedOut],
        "defaults: not drift"
    );
    assert_eq!(store.mails(&cat.id, a, 10).await.expect("cat").len(), 2);
    assert!(store.mails(&eve.id, a, 10).await.expect("eve").is_empty(), "chose nothing");
    assert!(store.mails(&dan.id, b, 10).await.expect("dan").is_empty(), "B's admin defaults exclude drift");
    assert!(store.mails(&dan.id, a, 10).await.expect("dan").is_empty(), "nothing of A's for B's people");
    assert!(store.mails(&ann.id, b, 10).await.expect("ann in B").is_empty(), "listed per account");
    let at_eight = domain::next_digest(t0, 8);
    assert!(store.mails(&cat.id, a, 10).await.expect("cat").iter().all(|m| m.digest && m.next_at == at_eight));

    // Now: only ann's is due, and two mailers take it once.
    let (one, two) =
        tokio::join!(store.claim_mails("one", t0 + 10, 60_000, 10), store.claim_mails("two", t0 + 10, 60_000, 10));
    let (one, two) = (one.expect("claim"), two.expect("claim"));
    assert_eq!(one.len() + two.len(), 1, "claimed once");
    let claimed = one.into_iter().chain(two).next().expect("ann's");
    assert_eq!(
        (claimed.to.as_str(), claimed.event.id.clone(), claimed.digest),
        ("ann@a.example", logged_out.id.clone(), false)
    );
    assert_eq!(claimed.event.data, logged_out.data);
    assert_eq!(claimed.account_name, "Account A");
    // Its claim runs out (the mailer died): another takes it over, and the first one's word no
    // longer counts.
    let taken = store.claim_mails("three", t0 + 10 + 60_001, 60_000, 10).await.expect("take over");
    assert_eq!(taken.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [claimed.id.as_str()]);
    let late =
        MailOutcome { id: claimed.id.clone(), lease: claimed.lease.clone(), at: t0 + 20, error: None, retry_at: None };
    store.record_mails(&[late]).await.expect("stale");
    assert_eq!(store.mails(&ann.id, a, 10).await.expect("ann")[0].status, MailStatus::Pending);
    let sent = MailOutcome {
        id: taken[0].id.clone(),
        lease: taken[0].lease.clone(),
        at: t0 + 20,
        error: None,
        retry_at: None,
    };
    store.record_mails(&[sent]).await.expect("record");
    let ann_mails = store.mails(&ann.id, a, 10).await.expect("ann");
    assert_eq!(
        (ann_mails[0].status, ann_mails[0].sent_at, ann_mails[0].attempts),
        (MailStatus::Sent, Some(t0 + 20), 1)
    );

    // At 08:00 the digest goes out whole, even past the claim's limit of one.
    assert!(store.claim_mails("one", at_eight - 1, 60_000, 10).await.expect("early").is_empty());
    // Two mailers at once, each taking one: the digest goes to one of them, whole.
    let (one, two) =
        tokio::join!(store.claim_mails("one", at_eight, 60_000, 1), store.claim_mails("two", at_eight, 60_000, 1));
    let (one, two) = (one.expect("claim"), two.expect("claim"));
    assert!(one.is_empty() || two.is_empty(), "split: {one:?} / {two:?}");
    let digest_claim = if one.is_empty() { two } else { one };
    assert_eq!(
        digest_claim.iter().map(|m| m.event.id.clone()).collect::<Vec<_>>(),
        [drift1.id.clone(), drift2.id.clone()]
    );
    // The server deferred it: tried again later, with why.
    let deferred: Vec<MailOutcome> = digest_claim
        .iter()
        .map(|m| MailOutcome {
            id: m.id.clone(),
            lease: m.lease.clone(),
            at: at_eight + 5,
            error: Some("451 try again".into()),
            retry_at: Some(at_eight + 60_000),
        })
        .collect();
    store.record_mails(&deferred).await.expect("deferred");
    let cat_mails = store.mails(&cat.id, a, 10).await.expect("cat");
    assert!(cat_mails.iter().all(|m| m.status == MailStatus::Pending
        && m.attempts == 1
        && m.last_error.as_deref() == Some("451 try again")));
    // A day after its hour, unsent: failed, never sent late.
    assert!(store.claim_mails("one", at_eight + day + 1, 60_000, 10).await.expect("late").is_empty());
    let cat_mails = store.mails(&cat.id, a, 10).await.expect("cat");
    assert!(cat_mails.iter().all(|m| m.status == MailStatus::Failed), "{cat_mails:?}");

    // Leaving the digest sends what it held now.
    let drift3 = Event::new(a, T::DriftFound, t0 + 2 * day, serde_json::json!({}));
    store.record_event(&drift3).await.expect("event");
    let each = MailPreferences { digest: false, ..digest.clone() };
    store.set_mail_preferences(&cat.id, &each, t0 + 2 * day + 5).await.expect("each");
    let now = store.claim_mails("one", t0 + 2 * day + 5, 60_000, 10).await.expect("now");
    assert_eq!(now.iter().map(|m| (m.event.id.clone(), m.digest)).collect::<Vec<_>>(), [(drift3.id.clone(), false)]);
    // Refused for good: failed at once.
    let refused = MailOutcome {
        id: now[0].id.clone(),
        lease: now[0].lease.clone(),
        at: t0 + 2 * day + 6,
        error: Some("550 no such user".into()),
        retry_at: None,
    };
    store.record_mails(&[refused]).await.expect("refused");
    let latest = &store.mails(&cat.id, a, 1).await.expect("cat")[0];
    assert_eq!((latest.status, latest.last_error.as_deref()), (MailStatus::Failed, Some("550 no such user")));

    // Past the retention: events go with their mails, except one still being sent.
    let waiting = Event::new(a, T::ConnectionLoggedOut, t0 + 3 * day, serde_json::json!({}));
    store.record_event(&waiting).await.expect("event");
    let now = t0 + 3 * day + 1;
    assert_eq!(store.prune_events(t0 + 10 * day, now, 2).await.expect("prune"), 2, "at most the limit");
    assert_eq!(store.prune_events(t0 + 10 * day, now, 100).await.expect("prune"), 3, "the rest but the pending one");
    assert!(store.mails(&cat.id, a, 10).await.expect("cat").is_empty(), "their mails went with them");
    let left = store.events(a, 10).await.expect("events");
    assert_eq!(left.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), [waiting.id.as_str()]);
    assert_eq!(store.mails(&ann.id, a, 10).await.expect("ann").len(), 1);

    // Someone removed from the account gets none of its mail still waiting.
    store.add_membership(&ann.id, b, Role::Viewer, 2).await.expect("ann joins B");
    store.delete_user(a, &ann.id).await.expect("ann leaves A");
    assert!(store.claim_mails("one", t0 + 4 * day, 60_000, 10).await.expect("claim").is_empty());
    let gone = store.mails(&ann.id, a, 10).await.expect("ann");
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].status, MailStatus::Failed);
    assert!(gone[0].last_error.as_deref().is_some_and(|e| e.contains("no longer in this account")), "{gone:?}");
}

async fn the_outbox_delivers_each_event_once_to_each_endpoint<S: NotificationStore + AuditStore>(
    store: &S,
    a: &AccountId,
    b: &AccountId,
) {
    use domain::{DeliveryAttempt, DeliveryStatus, Event, EventType as T, Webhook, WebhookId};
    let webhook = |account: &AccountId, events: Vec<T>, enabled: bool| Webhook {
        id: WebhookId::generate(),
        account_id: account.clone(),
        url: "https://hooks.example.com/in".into(),
        description: "ops".into(),
        events,
        enabled,
        disabled_reason: None,
        failing_since: None,
        created_at: 1,
        created_by: "me@a.example".into(),
    };
    let all = webhook(a, Vec::new(), true);
    let drift_only = webhook(a, vec![T::DriftFound], true);
    let off = webhook(a, Vec::new(), false);
    let theirs = webhook(b, Vec::new(), true);
    for w in [&all, &drift_only, &off, &theirs] {
        store.create_webhook(w, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").await.expect("webhook");
    }
    assert_eq!(store.webhook(a, &drift_only.id).await.expect("read"), drift_only);
    assert!(matches!(store.webhook(b, &all.id).await, Err(StoreError::NotFound)), "another account's");
    assert_eq!(store.webhooks(a).await.expect("list").len(), 3);

    let logged_out = Event::new(a, T::ConnectionLoggedOut, 10, serde_json::json!({"connection": {"id": "conn_x"}}));
    let drift = Event::new(a, T::DriftFound, 11, serde_json::json!({"resource_name": "Player"}));
    store.record_event(&logged_out).await.expect("event");
    store.record_event(&drift).await.expect("event");
    assert_eq!(store.pending_deliveries().await.expect("pending"), 3, "all: both; drift-only: one; off and B: none");
    let listed = store.events(a, 10).await.expect("events");
    assert_eq!(listed.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), [drift.id.clone(), logged_out.id.clone()]);
    assert_eq!(listed[1].data, logged_out.data);

    // Two notifiers at once: each delivery goes to one of them.
    let (one, two) =
        tokio::join!(store.claim_deliveries("one", 20, 60_000, 10), store.claim_deliveries("two", 20, 60_000, 10));
    let (one, two) = (one.expect("claim"), two.expect("claim"));
    let mut ids: Vec<_> = one.iter().chain(&two).map(|c| c.delivery.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((ids.len(), one.len() + two.len()), (3, 3), "claimed once each");
    assert!(store.claim_deliveries("three", 21, 60_000, 10).await.expect("claim").is_empty(), "leased");
    let claimed: Vec<_> = one.into_iter().chain(two).collect();
    let to_all = claimed
        .iter()
        .find(|c| c.delivery.webhook_id == all.id && c.delivery.event_type == T::ConnectionLoggedOut)
        .expect("claimed");
    assert_eq!(to_all.payload, logged_out.payload().to_string(), "the exact body");
    assert_eq!(
        to_all.secrets.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
    );

    // A failure is retried at its time; the endpoint is failing since.
    let failed = DeliveryAttempt { at: 30, status: Some(503), latency_ms: 12, response: "x".repeat(900) };
    let day = 86_400_000;
    let r = store.record_attempt(to_all, &failed, 1_030, 5 * day).await.expect("attempt");
    assert_eq!((r.recorded, r.status, r.disabled), (true, DeliveryStatus::Pending, false));
    assert!(!store.record_attempt(to_all, &failed, 1_030, 5 * day).await.expect("again").recorded, "once per claim");
    assert!(store.claim_deliveries("one", 1_029, 60_000, 10).await.expect("claim").is_empty(), "not yet due");
    // A person sends it again now, without waiting for its retry (its attempt count starts over,
    // so does its back-off; the log keeps every attempt).
    assert_eq!(store.redeliver(a, &all.id, Some(&to_all.delivery.id), 1_029).await.expect("redeliver"), 1);
    let again = store.claim_deliveries("one", 1_029, 60_000, 10).await.expect("claim");
    assert_eq!(again.len(), 1);
    let (d, attempts) = store.delivery(a, &to_all.delivery.id).await.expect("delivery");
    assert_eq!((d.attempts, d.last_status, attempts.len()), (0, Some(503), 1));
    assert_eq!(attempts[0].response.chars().count(), store::EXCERPT_CHARS, "an excerpt");
    assert!(matches!(store.delivery(b, &to_all.delivery.id).await, Err(StoreError::NotFound)), "another account's");
    assert_eq!(store.webhook(a, &all.id).await.expect("read").failing_since, Some(30));

    // Past its retry window it fails; a person redelivers it.
    let late = 1_029 + store::RETRY_WINDOW_MS + 1; // past the window the redelivery opened
    let r = store
        .record_attempt(&again[0], &DeliveryAttempt { at: 1_031, ..failed.clone() }, late, 5 * day)
        .await
        .expect("attempt");
    assert_eq!(r.status, DeliveryStatus::Failed);
    let listed = store.deliveries(a, &all.id, Some(DeliveryStatus::Failed), 10).await.expect("failed");
    assert_eq!(listed.len(), 1);
    assert!(matches!(store.redeliver(b, &all.id, Some(&listed[0].id), 2_000).await, Err(StoreError::NotFound)));
    assert_eq!(store.redeliver(a, &all.id, None, 2_000).await.expect("redeliver"), 1);
    let back = store.claim_deliveries("one", 2_000, 60_000, 10).await.expect("claim");
    let back = back.iter().find(|c| c.delivery.id == listed[0].id).expect("due again");
    let ok = DeliveryAttempt { at: 2_001, status: Some(204), latency_ms: 5, response: String::new() };
    assert_eq!(store.record_attempt(back, &ok, 9_999, 5 * day).await.expect("ok").status, DeliveryStatus::Delivered);
    assert_eq!(store.webhook(a, &all.id).await.expect("read").failing_since, None, "a success ends the failing");

    // A rotation: both secrets sign until the old one's time.
    store
        .rotate_webhook_secret(a, &drift_only.id, "whsec_bmV3LXNlY3JldC1mb3ItdGVzdHM=", 3_000, 4_000)
        .await
        .expect("rotate");
    assert!(matches!(
        store.rotate_webhook_secret(b, &drift_only.id, "whsec_eA==", 3_000, 4_000).await,
        Err(StoreError::NotFound)
    ));
    let drift_delivery = claimed.iter().find(|c| c.delivery.webhook_id == drift_only.id).expect("claimed");
    assert_eq!(
        store.redeliver(a, &drift_only.id, Some(&drift_delivery.delivery.id), 3_000).await.expect("redeliver"),
        0,
        "not while a notifier is sending it"
    );
    store.record_attempt(drift_delivery, &failed, 3_500, 5 * day).await.expect("attempt");
    let signed = store.claim_deliveries("one", 3_500, 100, 10).await.expect("claim");
    let signed = signed.iter().find(|c| c.delivery.webhook_id == drift_only.id).expect("due");
    assert_eq!(
        signed.secrets.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ["whsec_bmV3LXNlY3JldC1mb3ItdGVzdHM=", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        "the new one first"
    );
    let later = store.claim_deliveries("one", 4_001, 100, 10).await.expect("claim");
    let later = later.iter().find(|c| c.delivery.webhook_id == drift_only.id).expect("lease ran out");
    assert_eq!(later.secrets.len(), 1, "the old one expired");

    // Failing for five days without a success turns an endpoint off, with an event and an audit entry.
    let event = Event::new(a, T::DriftFound, 5_000, serde_json::json!({}));
    store.record_event(&event).await.expect("event");
    let mut claims = store.claim_deliveries("one", 5_000, 60_000, 10).await.expect("claim");
    claims.retain(|c| c.delivery.webhook_id == all.id);
    let first = DeliveryAttempt { at: 5_000, status: None, latency_ms: 10_000, response: "no answer in time".into() };
    assert!(!store.record_attempt(&claims[0], &first, 6_000, 5 * day).await.expect("attempt").disabled);
    let claims = store.claim_deliveries("one", 5_000 + 5 * day, 60_000, 10).await.expect("claim");
    let claim = claims.iter().find(|c| c.delivery.webhook_id == all.id).expect("due");
    let last = DeliveryAttempt { at: 5_000 + 5 * day, ..first };
    assert!(store.record_attempt(claim, &last, 5_000 + 6 * day, 5 * day).await.expect("attempt").disabled);
    let turned_off = store.webhook(a, &all.id).await.expect("read");
    assert!(!turned_off.enabled);
    assert!(turned_off.disabled_reason.as_deref().is_some_and(|r| r.contains("5 days")), "{turned_off:?}");
    assert!(store.events(a, 10).await.expect("events").iter().any(|e| e.kind == T::WebhookDisabled));
    let audit = store.audit(a, &AuditQuery::default()).await.expect("audit");
    assert!(audit.iter().any(|(_, e)| e.action == "webhook.disabled"), "{audit:?}");
    assert!(
        store
            .claim_deliveries("one", 5_000 + 6 * day, 60_000, 10)
            .await
            .expect("claim")
            .iter()
            .all(|c| c.delivery.webhook_id != all.id),
        "an endpoint that is off is not sent to"
    );
    // Turned on again by a person: not failing, no reason.
    // A change that does not say whether it is on leaves it off (no lost update).
    store
        .update_webhook(&Webhook { description: "renamed".into(), enabled: true, ..turned_off.clone() }, None)
        .await
        .expect("rename");
    assert!(!store.webhook(a, &all.id).await.expect("read").enabled, "still off");
    store.update_webhook(&turned_off, Some(true)).await.expect("on");
    let on = store.webhook(a, &all.id).await.expect("read");
    assert_eq!((on.enabled, on.disabled_reason, on.failing_since), (true, None, None));
    store.delete_webhook(a, &all.id).await.expect("delete");
    assert!(matches!(store.delete_webhook(a, &all.id).await, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn postgres_passes_the_conformance_suite() {
    let Some(url) = postgres_url() else { return };
    // A new database for each part, as on SQLite.
    let (store, a, b) = postgres(&url).await;
    deployments_are_claimed_once_resume_after_a_lost_lease_and_finish(&store, &a, &b).await;
    let (store, a, b) = postgres(&url).await;
    systems_and_environments_belong_to_one_account(&store, &a, &b).await;
    let (store, a, b) = postgres(&url).await;
    users_roles_and_tokens_stay_in_their_account(&store, &a, &b).await;
    let (store, a, b) = postgres(&url).await;
    a_connection_round_trips_and_stays_in_its_account(&store, &a, &b).await;
    let (store, a, b) = postgres(&url).await;
    names_and_legacy_slots_are_unique(&store, &a, &b).await;
    let (store, a, _) = postgres(&url).await;
    search_sort_and_pages_work(&store, &a).await;
    let (store, a, _) = postgres(&url).await;
    a_short_search_counts_up_to_its_cap(&store, &a).await;
    let (store, a, b) = postgres(&url).await;
    filters_sorts_and_keyset_pages_agree(&store, &a, &b).await;
    let (store, a, _) = postgres(&url).await;
    rollouts_move_in_waves_and_only_from_what_was_read(&store, &a).await;
    let (store, a, b) = postgres(&url).await;
    baselines_and_drifted_targets_wait_for_a_person(&store, &a, &b).await;
    let (store, a, b) = postgres(&url).await;
    the_outbox_delivers_each_event_once_to_each_endpoint(&store, &a, &b).await;
    let (store, a, b) = postgres(&url).await;
    the_mail_outbox_queues_by_choice_and_sends_a_digest_whole(&store, &a, &b).await;
    let (store, a, _) = postgres(&url).await;
    tokens_rotate_atomically(&store, &a).await;
    let (store, a, _) = postgres(&url).await;
    statuses_change_through_observations_with_their_reason_and_audit(&store, &a).await;
    let (store, a, _) = postgres(&url).await;
    a_failing_streak_is_announced_once_and_only_from_logged_in(&store, &a).await;
    let (store, a, b) = postgres(&url).await;
    oauth_grants_are_dated_by_their_sign_in_and_kept_by_renewals(&store, &a, &b).await;
    let (store, a, _) = postgres(&url).await;
    concurrent_finishes_finish_the_deployment(&store, &a).await;
    let (store, a, _) = postgres(&url).await;
    a_transaction_commits_whole_or_not_at_all(&Store::from(store), &a).await;
    let (store, a, _) = postgres(&url).await;
    second_factors_are_used_once_and_required_per_account(&store, &a).await;
    let (store, a, b) = postgres(&url).await;
    single_sign_on_settings_domains_and_identities_stay_in_their_account(&store, &a, &b).await;
    let (store, a, b) = postgres(&url).await;
    people_belong_to_several_accounts_with_a_role_in_each(&store, &a, &b).await;
    let (store, a, b) = postgres(&url).await;
    loader_settings_belong_to_their_system(&store, &a, &b).await;
}

#[tokio::test]
async fn postgres_seals_secrets_refuses_another_key_and_exports_in_order() {
    use futures_util::StreamExt;
    let Some(url) = postgres_url() else { return };
    let (store, a, _) = postgres(&url).await;
    let c = new_connection(&a, "Sealed", "Org", "s@o.example", 1);
    let secrets =
        NewSecrets { tokens: Some(tokens("00Dxx!access-plain", Some("5Aep861refresh-plain"))), ..Default::default() };
    store.insert(&c, &secrets).await.expect("insert");
    let raw: (String, String) = sqlx::query_as("SELECT access_token, refresh_token FROM connections WHERE id = $1")
        .bind(c.id.as_str())
        .fetch_one(store.pool())
        .await
        .expect("raw");
    for (column, plain) in [(&raw.0, "access-plain"), (&raw.1, "refresh-plain")] {
        assert!(column.starts_with("v1.") && !column.contains(plain), "{column}");
    }
    // The database remembers its key: another one is refused.
    let database: String = sqlx::query_scalar("SELECT current_database()").fetch_one(store.pool()).await.expect("db");
    let same = url.rsplit_once('/').map(|(base, _)| format!("{base}/{database}")).expect("url");
    PgStore::open(&same, 2, keys()).await.expect("the same key opens again");
    let err = PgStore::open(&same, 2, Keyring::new(MasterKey::from_bytes([9u8; 32]))).await.expect_err("another key");
    assert!(matches!(err, StoreError::KeyMismatch { .. }), "{err}");
    // Exports: every row once, in order, across chunks.
    for i in 0..4_100_i64 {
        let c = new_connection(&a, &format!("c{i}"), &format!("Org {i:05}"), "x@o.example", i / 2);
        store.insert(&c, &NewSecrets::default()).await.expect("insert");
    }
    for (descending, sort) in [(false, SortKey::CreatedAt), (true, SortKey::CreatedAt), (false, SortKey::AccountName)] {
        let chunks: Vec<Vec<store::TableRow>> = store
            .table_chunks(&a, &ListQuery { descending, sort, ..Default::default() })
            .map(|c| c.expect("chunk"))
            .collect()
            .await;
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [2000, 2000, 101], "{sort:?}");
        let mut ids: Vec<String> = chunks.concat().into_iter().map(|r| r.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4_101, "every row once");
    }
}

#[tokio::test]
async fn secrets_are_sealed_on_disk() {
    let (store, a, _) = sqlite().await;
    let c = new_connection(&a, "Sealed", "Org", "s@o.example", 1);
    let secrets = NewSecrets {
        consumer_secret: Some(ClientSecret::new("consumer-secret-plain")),
        tokens: Some(tokens("00Dxx!access-plain", Some("5Aep861refresh-plain"))),
        ..Default::default()
    };
    store.insert(&c, &secrets).await.expect("insert");
    let raw: (String, String, String) =
        sqlx::query_as("SELECT consumer_secret, access_token, refresh_token FROM connections WHERE id = ?")
            .bind(c.id.as_str())
            .fetch_one(store.pool())
            .await
            .expect("raw");
    for (column, plain) in [(&raw.0, "consumer-secret-plain"), (&raw.1, "access-plain"), (&raw.2, "refresh-plain")] {
        assert!(column.starts_with("v1.") && !column.contains(plain), "{column}");
    }
    // A sealed value moved to another row does not open there.
    let other = new_connection(&a, "Other", "Org", "s@o.example", 2);
    store.insert(&other, &NewSecrets::default()).await.expect("insert");
    sqlx::query("UPDATE connections SET access_token = ? WHERE id = ?")
        .bind(&raw.1)
        .bind(other.id.as_str())
        .execute(store.pool())
        .await
        .expect("copy");
    assert!(matches!(store.secrets(&other.id).await, Err(StoreError::Vault(_))));
}

#[tokio::test]
async fn a_different_master_key_is_refused_at_open() {
    let dir = std::env::temp_dir().join(format!("lightbridge-store-key-{}", ConnectionId::generate()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("lightbridge.db");
    drop(SqliteStore::open(&path, keys()).await.expect("first open"));
    SqliteStore::open(&path, keys()).await.expect("the same key opens again");
    let other = Keyring::new(MasterKey::from_bytes([9u8; 32]));
    let err = SqliteStore::open(&path, other).await.expect_err("another key is refused");
    assert!(matches!(err, StoreError::KeyMismatch { .. }));
    assert!(err.to_string().contains("master key changed"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn key_rotation_reseals_second_factors_and_half_done_sign_ins() {
    let dir = std::env::temp_dir().join(format!("lightbridge-store-rotate-{}", ConnectionId::generate()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("lightbridge.db");
    let store = SqliteStore::open(&path, keys()).await.expect("open");
    let a = AccountId::generate();
    store.create_account(&a, "A", 1).await.expect("account");
    let ann = domain::User {
        id: domain::UserId::generate(),
        account_id: Some(a.clone()),
        email: "ann@a.example".into(),
        name: String::new(),
        role: domain::Role::Owner,
    };
    store.create_user(&ann, Some("hash"), 1).await.expect("user");
    store.begin_two_factor(&ann.id, &vault::TotpSecret::new("JBSWY3DPEHPK3PXP"), 1).await.expect("begin");
    store.save_pending_sign_in("p1", "second_factor", "payload", i64::MAX).await.expect("pending");
    drop(store);
    let new = MasterKey::from_bytes([7u8; 32]);
    let both = Keyring::new(MasterKey::from_bytes([7u8; 32])).with_previous(MasterKey::from_bytes([42u8; 32]));
    let store = SqliteStore::open(&path, both).await.expect("open with both keys");
    let rotation = store.rotate_keys(100).await.expect("rotate");
    assert_eq!((rotation.resealed, rotation.remaining), (2, 0), "{rotation:?}");
    drop(store);
    let store = SqliteStore::open(&path, Keyring::new(new)).await.expect("the new key alone opens it");
    let found = store.two_factor(&ann.id).await.expect("read").expect("found");
    assert_eq!(found.secret.expose_secret(), "JBSWY3DPEHPK3PXP");
    assert_eq!(store.pending_sign_in("p1", "second_factor", 1).await.expect("pending"), "payload");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn exports_read_every_row_once_in_order_across_chunks() {
    use futures_util::StreamExt;
    let (store, a, _) = sqlite().await;
    for i in 0..4_100_i64 {
        // Equal creation times in pairs: the id breaks ties, across chunk boundaries too.
        let c = new_connection(&a, &format!("c{i}"), &format!("Org {i:05}"), "x@o.example", i / 2);
        store.insert(&c, &NewSecrets::default()).await.expect("insert");
    }
    for descending in [false, true] {
        let chunks: Vec<Vec<store::TableRow>> = store
            .table_chunks(&a, &ListQuery { descending, ..Default::default() })
            .map(|c| c.expect("chunk"))
            .collect()
            .await;
        assert_eq!(chunks.iter().map(Vec::len).collect::<Vec<_>>(), [2000, 2000, 100]);
        let rows = chunks.concat();
        let keys: Vec<(i64, String)> = rows.iter().map(|r| (r.created_at, r.id.clone())).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        if descending {
            sorted.reverse();
        }
        assert_eq!(keys, sorted, "in order (descending: {descending})");
        sorted.dedup();
        assert_eq!(sorted.len(), 4_100, "every row once");
    }
}

/// The export's direct read (#17): every matching row once, in the table's order, as the
/// database holds it; a search with quotes, `$` and `?` is a value, never SQL; the reader may
/// stop early.
async fn the_export_reads_rows_directly_in_order(store: Store, a: AccountId) {
    for i in 0..30_i64 {
        let org = if i % 3 == 0 { format!("Org {i:02} it's $lb$ ?") } else { format!("Org {i:02}") };
        let c = new_connection(&a, &format!("d{i}"), &org, "d@o.example", i / 2);
        store.insert(&c, &NewSecrets::default()).await.expect("insert");
    }
    let read = |q: ListQuery, stop_after: usize| {
        let (store, a) = (store.clone(), a.clone());
        async move {
            tokio::task::spawn_blocking(move || {
                let mut rows: Vec<(String, Option<String>)> = Vec::new();
                store
                    .read_table_blocking(&a, &q, &mut |r| {
                        rows.push((r.id.to_string(), r.org_name.map(str::to_string)));
                        rows.len() < stop_after
                    })
                    .expect("read");
                rows
            })
            .await
            .expect("join")
        }
    };
    let search = |term: &str| Some(term.to_string());
    for q in [
        ListQuery::default(),
        ListQuery { descending: true, sort: SortKey::AccountName, ..Default::default() },
        ListQuery { search: search("it's $lb$ ?"), ..Default::default() },
        ListQuery { search: search("$lb$"), descending: true, ..Default::default() },
    ] {
        let listed = store.list(&a, &ListQuery { limit: 500, ..q.clone() }).await.expect("list");
        let want: Vec<(String, Option<String>)> =
            listed.rows.iter().map(|c| (c.id.to_string(), c.org.as_ref().map(|o| o.org_name.clone()))).collect();
        assert!(!want.is_empty(), "{q:?}");
        assert_eq!(read(q.clone(), usize::MAX).await, want, "{q:?}");
    }
    let hostile = ListQuery { search: search("'; DROP TABLE connections; --"), ..Default::default() };
    assert!(read(hostile, usize::MAX).await.is_empty());
    assert_eq!(store.list(&a, &ListQuery { limit: 1, ..Default::default() }).await.expect("list").total, 30);
    assert_eq!(read(ListQuery::default(), 5).await.len(), 5, "stopped by the reader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_read_rows_directly_on_both_databases() {
    let dir = std::env::temp_dir().join(format!("lightbridge-direct-{}", domain::UserId::generate()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sqlite = SqliteStore::open(&dir.join("direct.db"), keys()).await.expect("store");
    let a = AccountId::generate();
    sqlite.create_account(&a, "Direct", 0).await.expect("account");
    assert!(sqlite.reads_directly());
    the_export_reads_rows_directly_in_order(sqlite.into(), a).await;
    let _ = std::fs::remove_dir_all(&dir);
    let Some(url) = postgres_url() else { return };
    let (pg, a, _) = postgres(&url).await;
    // Two connections, so the next reads surely meet the one the export used.
    let name: String = sqlx::query_scalar("SELECT current_database()").fetch_one(pg.pool()).await.expect("name");
    let url = format!("{}/{name}", url.rsplit_once('/').expect("url").0);
    let small = PgStore::open(&url, 2, keys()).await.expect("store");
    the_export_reads_rows_directly_in_order(small.clone().into(), a.clone()).await;
    // A read stopped mid-copy (the client went away) leaves no connection half-way through it.
    for _ in 0..5 {
        let listed = small.list(&a, &ListQuery { limit: 5, ..Default::default() }).await.expect("list after");
        assert_eq!((listed.total, listed.rows.len()), (30, 5));
    }
}
