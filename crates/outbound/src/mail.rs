//! Mail to Lightbridge's users through the operator's SMTP server (#18), with `lettre`:
//! STARTTLS required by default (a server that does not offer it is refused, so a stripped
//! `STARTTLS` cannot downgrade the connection), or TLS from the first byte, and the operator's
//! credentials. Plain SMTP is for a relay on the same machine only.

use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use zeroize::Zeroizing;

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with `STARTTLS`, which the server must offer (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: for a relay on the same machine only.
    None,
}

impl Security {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "starttls" => Security::StartTls,
            "tls" => Security::Tls,
            "none" => Security::None,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Security::StartTls => "starttls",
            Security::Tls => "tls",
            Security::None => "none",
        }
    }
}

/// The operator's mail server.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<Zeroizing<String>>,
    /// The sender, as `Name <address>` or an address.
    pub from: String,
    /// Certificates (PEM) trusted besides the system's, for a server with a private CA.
    pub ca_pem: Option<Vec<u8>>,
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from)
            .field("ca_pem", &self.ca_pem.as_ref().map(|p| p.len()))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// One mail: a plain-text and an HTML body of the same words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub to: String,
    pub to_name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The left part of the `Message-ID` (the sender's domain is added): the same on every
    /// try of one mail, so a mail server or reader can tell a repeat.
    pub id: String,
    /// Further headers (`Auto-Submitted`, `X-Lightbridge-Event`, …).
    pub headers: Vec<(&'static str, String)>,
}

/// Why the mail server did not take a mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The server refused this mail for good (a 5xx to its sender, recipient or content):
    /// trying again will not help. Sign-in refusals and lost connections are not permanent:
    /// the operator can mend them.
    pub permanent: bool,
    pub text: String,
}

/// The mail server, connected on demand (connections are pooled).
#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl Smtp {
    /// Checks the sender and the certificates without connecting or starting anything (for
    /// reading configuration, before any runtime exists).
    pub fn check(config: &SmtpConfig) -> Result<(), String> {
        config.from.parse::<Mailbox>().map_err(|e| format!("the sender {:?} is not a mailbox: {e}", config.from))?;
        if config.security != Security::None {
            tls_parameters(config)?;
        }
        Ok(())
    }

    /// The transport for this server (inside a Tokio runtime: its connection pool runs there);
    /// a wrong sender or certificate is said here, not at the first mail.
    pub fn new(config: &SmtpConfig) -> Result<Self, String> {
        let from: Mailbox =
            config.from.parse().map_err(|e| format!("the sender {:?} is not a mailbox: {e}", config.from))?;
        let domain = from.email.domain().to_string();
        let tls = || tls_parameters(config);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
            .port(config.port)
            .timeout(Some(config.timeout))
            .hello_name(ClientId::Domain(domain.clone()));
        builder = match config.security {
            Security::StartTls => builder.tls(Tls::Required(tls()?)),
            Security::Tls => builder.tls(Tls::Wrapper(tls()?)),
            Security::None => builder.tls(Tls::None),
        };
        if let Some(user) = &config.username {
            let password = config.password.as_ref().map(|p| p.to_string()).unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Smtp { transport: builder.build(), from, domain })
    }

    /// The sender's address.
    pub fn from(&self) -> String {
        self.from.to_string()
    }

    /// Sends one mail; the server has accepted it when this returns `Ok`.
    pub async fn send(&self, letter: &Letter) -> Result<(), Refusal> {
        let to: lettre::Address = letter
            .to
            .parse()
            .map_err(|e| Refusal { permanent: true, text: format!("the address {:?} is not valid: {e}", letter.to) })?;
        let name = (!letter.to_name.trim().is_empty()).then(|| letter.to_name.trim().to_string());
        let mut message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(name, to))
            .subject(letter.subject.clone())
            .message_id(Some(format!("<{}@{}>", letter.id, self.domain)));
        for (name, value) in &letter.headers {
            message = message.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(name), value.clone()));
        }
        let message = message
            .multipart(MultiPart::alternative_plain_html(letter.text.clone(), letter.html.clone()))
            .map_err(|e| Refusal { permanent: true, text: format!("the mail could not be built: {e}") })?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| refusal(&e))
    }
}

/// TLS for the server's name, trusting the system's roots and the configured CA file.
fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(config.host.clone());
    if let Some(pem) = &config.ca_pem {
        let blocks = split_pem(pem);
        if blocks.is_empty() {
            return Err("the mail server's CA file holds no certificate (PEM)".into());
        }
        for block in blocks {
            let cert = Certificate::from_pem(&block).map_err(|e| format!("the mail server's CA file: {e}"))?;
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| format!("TLS for the mail server: {e}"))
}

/// The words of a refusal, and whether it is for good.
fn refusal(e: &lettre::transport::smtp::Error) -> Refusal {
    let code = e.status().map(|c| c.to_string());
    // 530/534/535/538: sign-in refused or required; the operator mends that, not the mail.
    let sign_in = code.as_deref().is_some_and(|c| matches!(c, "530" | "534" | "535" | "538"));
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    if sign_in {
        text = format!("the mail server refused Lightbridge's sign-in (check [mail] username and password): {text}");
    }
    Refusal { permanent: e.is_permanent() && !sign_in && about_this_mail(&text), text }
}

/// Whether a permanent (5xx) refusal is about this mail — its recipient (RFC 3463's `5.1.x`,
/// `5.2.x`: no such mailbox, mailbox full or disabled) or its content (`5.6.x`) — rather than
/// about the operator's setup (a relay denied, a sender not allowed: `5.7.x`), which the
/// operator can mend, so that mail is tried again for its day. Without an enhanced status code
/// it cannot be told, and is tried again.
fn about_this_mail(text: &str) -> bool {
    // The first word shaped like an enhanced code (class.subject.detail, three numbers) is the
    // reply's; an address further on (5.6.7.8) has four.
    let code = text.split(|c: char| !(c.is_ascii_digit() || c == '.')).find(|word| {
        let parts: Vec<&str> = word.split('.').collect();
        parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..].iter().all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    });
    code.is_some_and(|c| ["5.1.", "5.2.", "5.6."].iter().any(|class| c.starts_with(class)))
}

/// Each certificate of a PEM file on its own (lettre reads one per call).
fn split_pem(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END CERTIFICATE-----") {
            out.push(current.clone().into_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let config = SmtpConfig {
            host: "smtp.example.com".into(),
            port: 587,
            security: Security::StartTls,
            username: Some("lightbridge".into()),
            password: Some(Zeroizing::new("hunter2-secret".into())),
            from: "Lightbridge <noreply@example.com>".into(),
            ca_pem: None,
            timeout: Duration::from_secs(10),
        };
        let text = format!("{config:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }

    #[test]
    fn a_sender_that_is_not_a_mailbox_is_said_at_start() {
        let config = SmtpConfig {
            host: "smtp.example.com".into(),
            port: 587,
            security: Security::None,
            username: None,
            password: None,
            from: "not an address".into(),
            ca_pem: None,
            timeout: Duration::from_secs(10),
        };
        let err = Smtp::check(&config).expect_err("refused");
        assert!(err.contains("not a mailbox"), "{err}");
    }

    #[test]
    fn only_a_refusal_of_the_recipient_or_content_is_for_good() {
        assert!(about_this_mail("permanent error (550): 5.1.1 <nobody@example.com>: Recipient address rejected"));
        assert!(about_this_mail("permanent error (552): 5.2.2 Mailbox full"));
        assert!(about_this_mail("permanent error (554): 5.6.0 Message content rejected"));
        assert!(!about_this_mail("permanent error (550): 5.7.1 Relaying denied"), "the operator's setup");
        assert!(!about_this_mail("permanent error (553): sender not allowed"), "no enhanced code: tried again");
        assert!(
            !about_this_mail("permanent error (550): 5.7.1 Relaying denied for 5.6.7.8"),
            "the code, not an address"
        );
    }

    #[test]
    fn every_certificate_of_a_bundle_is_read() {
        let one = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(split_pem(format!("{one}junk\n{one}").as_bytes()).len(), 2);
    }
}
