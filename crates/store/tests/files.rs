//! The SQLite files hold sealed secrets and everything else: only their owner may read them.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;

use store::{CatalogStore, SqliteStore, create_private_dir};
use vault::{Keyring, MasterKey};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[tokio::test]
async fn the_data_folder_is_0700_and_the_database_and_its_wal_files_are_0600() {
    let root = std::env::temp_dir().join(format!("lightbridge-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("data");
    create_private_dir(&dir).expect("data folder");
    assert_eq!(mode(&dir), 0o700);
    let db = dir.join("lightbridge.db");
    let store = SqliteStore::open(&db, Keyring::new(MasterKey::generate().expect("key"))).await.expect("open");
    store.create_account(&domain::AccountId::generate(), "Acme", 1).await.expect("a write, so the WAL exists");
    for file in ["lightbridge.db", "lightbridge.db-wal", "lightbridge.db-shm"] {
        let path = dir.join(file);
        assert!(path.exists(), "{file}");
        assert_eq!(mode(&path), 0o600, "{file}");
    }
    drop(store);

    // A folder and a database left readable by others (an older version) are narrowed on open.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    create_private_dir(&dir).expect("data folder");
    let keys = Keyring::new(MasterKey::generate().expect("key"));
    let _ = SqliteStore::open(&db, keys).await; // a different key is refused, after the file is narrowed
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&db), 0o600);
    let _ = std::fs::remove_dir_all(root);
}
