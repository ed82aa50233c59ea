//! A real DNS server for the domain-proof tests: dnslib from PyPI (`scripts/dns-server/serve.py`,
//! installed into `compat/.venv` by `compat/install.sh`), answering from a zone file the test
//! edits as a domain's owner edits their DNS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub struct DnsServer {
    pub address: SocketAddr,
    zone: PathBuf,
    child: tokio::process::Child,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.zone);
    }
}

impl DnsServer {
    /// Starts the server with an empty zone.
    pub async fn start() -> DnsServer {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let python = root.join("compat/.venv/bin/python");
        assert!(python.exists(), "the test DNS server's Python is not installed: run compat/install.sh (.ci/run does)");
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let zone = std::env::temp_dir().join(format!("lightbridge-test-zone-{}-{n}.txt", std::process::id()));
        std::fs::write(&zone, "").expect("zone");
        let mut command = tokio::process::Command::new(python);
        command.arg(root.join("scripts/dns-server/serve.py")).arg(&zone);
        let (child, port) = crate::process::start_listening(command, "the DNS server").await;
        DnsServer { address: SocketAddr::from(([127, 0, 0, 1], port)), zone, child }
    }

    /// Replaces the zone with these TXT records, `(name, value)`.
    pub fn set_txt(&self, records: &[(&str, &str)]) {
        let text: String = records.iter().map(|(name, value)| format!("{name}. 60 IN TXT \"{value}\"\n")).collect();
        std::fs::write(&self.zone, text).expect("zone");
    }

    /// Stops answering (the process ends; its port refuses).
    pub async fn stop(&mut self) {
        self.child.kill().await.expect("kill");
    }
}
