//! The layering of issue #12, enforced: actions live in the service crate; the server is HTTP
//! adapters over it; the CLI changes nothing except through it. Each test reads the sources
//! (and `Cargo.toml`s) and fails, naming the offending line, when a boundary is crossed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Source lines without `//` comments (doc comments mention modules freely).
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or_default().to_string()))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect()
}

/// The names under `[dependencies]` of a crate's manifest (not dev- or build-dependencies).
fn dependencies(krate: &str) -> BTreeSet<String> {
    let manifest = std::fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).expect("manifest");
    let mut in_deps = false;
    let mut names = BTreeSet::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && let Some((name, _)) = line.split_once('=') {
            names.insert(name.trim().trim_end_matches(".workspace").to_string());
        }
    }
    names
}

#[test]
fn the_server_reaches_salesforce_and_publishing_only_through_the_service() {
    let deps = dependencies("server");
    assert!(deps.contains("service"), "the server is built on the service crate: {deps:?}");
    for forbidden in ["salesforce", "publish", "connections"] {
        assert!(!deps.contains(forbidden), "crates/server/Cargo.toml depends on {forbidden}: go through service");
    }
    let mut found = Vec::new();
    for file in rust_files(&root().join("crates/server/src")) {
        for (n, line) in code_lines(&file) {
            for forbidden in ["salesforce::", "publish::", "sqlx::"] {
                let used = line.match_indices(forbidden).any(|(i, _)| {
                    // `service::salesforce…` would still be the service's; a bare path is not.
                    i == 0 || !line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
                });
                if used {
                    found.push(format!("{}:{n}: {}", file.display(), line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "the server calls Salesforce, publishing or SQL directly:\n{}", found.join("\n"));
}

#[test]
fn the_service_knows_no_http() {
    let deps = dependencies("service");
    for forbidden in ["axum", "askama", "hyper", "tower", "tower-http", "reqwest"] {
        assert!(!deps.contains(forbidden), "crates/service/Cargo.toml depends on {forbidden}");
    }
}

/// The server's top-level modules and which others each refers to (`crate::x`, and a
/// submodule's `super::super::x`).
fn server_module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("crates/server/src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(&src).expect("under src");
        let module = relative.components().next().expect("component").as_os_str().to_string_lossy().replace(".rs", "");
        if module == "lib" {
            continue; // the crate root re-exports; it is not a module of its own
        }
        let refs = graph.entry(module.clone()).or_default();
        for (_, line) in code_lines(&file) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && name != module && src.join(format!("{name}.rs")).exists()
                    || src.join(&name).is_dir() && name != module
                {
                    refs.insert(name);
                }
            }
        }
    }
    graph
}

#[test]
fn the_api_and_the_console_do_not_import_each_other_and_no_modules_import_in_a_cycle() {
    let graph = server_module_graph();
    assert!(graph.contains_key("api") && graph.contains_key("console"), "{graph:?}");
    assert!(!graph["api"].contains("console"), "api/ imports console/: {:?}", graph["api"]);
    assert!(!graph["console"].contains("api"), "console/ imports api/: {:?}", graph["console"]);
    // No cycle between any two (or more) of the server's modules.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            panic!("the server's modules import in a cycle: {}", cycle.join(" → "));
        }
    }
}

/// The store's write methods, read from its traits: every method whose name says it changes
/// something.
fn store_write_methods() -> BTreeSet<String> {
    const WRITES: &[&str] = &[
        "create_", "insert", "update", "delete", "set_", "save_", "record", "rotate", "bind", "unbind", "rename",
        "revoke", "claim", "finish", "take_", "touch", "renew", "release", "mark",
    ];
    let mut methods = BTreeSet::new();
    for file in rust_files(&root().join("crates/store/src")) {
        for (_, line) in code_lines(&file) {
            let line = line.trim_start();
            let Some(rest) = line.strip_prefix("fn ").or_else(|| line.strip_prefix("async fn ")) else { continue };
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if WRITES.iter().any(|w| name.starts_with(w)) {
                methods.insert(name);
            }
        }
    }
    methods
}

#[test]
fn the_cli_changes_nothing_except_through_the_service() {
    let mut writes = store_write_methods();
    // A transaction is opened to write.
    writes.insert("begin".to_string());
    for expected in ["create_user", "insert", "set_password", "create_api_token", "record", "rotate_keys"] {
        assert!(writes.contains(expected), "the store's write methods are read from its traits: {writes:?}");
    }
    let mut found = Vec::new();
    for file in rust_files(&root().join("crates/lightbridge/src")) {
        let lines = code_lines(&file);
        for (i, (n, line)) in lines.iter().enumerate() {
            // A call on a store: `store.x(`, `svc.store.x(`, or a chain whose previous line
            // ends in the store.
            let before = if i > 0 { lines[i - 1].1.trim_end() } else { "" };
            let on_store = |call: &str| {
                line.contains(&format!("store{call}"))
                    || (line.trim_start().starts_with(call) && before.ends_with("store"))
            };
            for method in &writes {
                if on_store(&format!(".{method}(")) {
                    found.push(format!("{}:{n}: {}", file.display(), line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "the CLI writes to the store directly:\n{}", found.join("\n"));
}

#[test]
fn the_cli_speaks_to_a_server_only_through_the_typed_client() {
    let deps = dependencies("lightbridge");
    assert!(deps.contains("client"), "{deps:?}");
    assert!(!deps.contains("reqwest"), "the CLI's HTTP goes through the `client` crate: {deps:?}");
}
