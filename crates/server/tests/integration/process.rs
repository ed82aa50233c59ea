//! The independent servers the tests start (an OpenID Connect provider, a DNS server) are
//! processes that print `listening=<port>` once they serve.

use tokio::io::AsyncBufReadExt;

/// Starts `command` (stdout piped, stderr dropped, ended with the test) and waits up to 20 s for
/// its `listening=<port>` line; its output is read on after that, so a closed pipe never ends
/// it at its next line (EPIPE).
pub async fn start_listening(mut command: tokio::process::Command, what: &str) -> (tokio::process::Child, u16) {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let port = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(port) = line.strip_prefix("listening=") {
                return port.trim().parse::<u16>().ok();
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("{what} did not start"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}
