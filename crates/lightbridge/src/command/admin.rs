//! Operator commands: `migrate`, `print-config`, `keys generate`, `accounts create|list|connectors`,
//! `users create|set-password`, `tokens create`.

use domain::{AccountId, ActorKind, AuditEntry, Role, User, UserId};
use store::{AccessStore, AuditStore, CatalogStore, ConnectionStore};

use super::common::{ConfigArgs, now_ms, open_store};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Applies database migrations (also done at every start) and exits.
pub async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let config = args.config.load(None)?;
    open_store(&config).await?;
    println!("database at {} is up to date", config.data_dir.join("lightbridge.db").display());
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct PrintConfigArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Prints the effective configuration with secrets redacted.
pub fn print_config(args: PrintConfigArgs) -> anyhow::Result<()> {
    print!("{}", args.config.load(None)?.redacted());
    Ok(())
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Prints a new random master key (base64). Store it like a password.
    Generate,
    /// Re-seals every stored secret under the current master key while instances keep
    /// serving, then records it as the database's key (docs/operations.md, "Rotating the
    /// master key"). Configure the new key as the master key and the old one under
    /// previous_master_keys first.
    Rotate {
        #[command(flatten)]
        config: ConfigArgs,
        /// Secrets re-sealed per step.
        #[arg(long, default_value_t = 500)]
        batch: u32,
    },
}

pub async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Generate => {
            let key = vault::MasterKey::generate()?;
            println!("{}", key.expose_base64().as_str());
            eprintln!(
                "fingerprint {} — set it as LIGHTBRIDGE_MASTER_KEY or write it to a file named by LIGHTBRIDGE_MASTER_KEY_FILE",
                &key.fingerprint()[..16]
            );
        }
        KeysCommand::Rotate { config, batch } => {
            let config = config.load(None)?;
            let store = open_store(&config).await?;
            let started = std::time::Instant::now();
            let mut total = 0;
            loop {
                let step = store.rotate_keys(batch).await?;
                total += step.resealed;
                eprintln!("re-sealed {total} secret(s); {} left under an old key", step.remaining);
                if step.remaining == 0 {
                    break;
                }
                if step.resealed == 0 {
                    anyhow::bail!(
                        "{} secret(s) are sealed under a key this configuration does not hold, or an instance still seals with the old key: configure every instance with the new master_key (and the old one in previous_master_keys), then run this again",
                        step.remaining
                    );
                }
            }
            let fingerprint = &config.master_key.fingerprint()[..16];
            let detail = format!("{total} secret(s) re-sealed under key {fingerprint}");
            let _ = store.record(&cli_entry(None, "keys.rotated", "instance", fingerprint, "master key", detail)).await;
            println!(
                "done in {:.1} s: {total} secret(s) re-sealed; the database now names key {fingerprint}. Remove the old key from previous_master_keys and restart the instances.",
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

#[derive(Debug, clap::Subcommand)]
pub enum AccountsCommand {
    /// Creates an account (a tenant) and prints its id.
    Create {
        #[command(flatten)]
        config: ConfigArgs,
        /// The account's display name.
        #[arg(long)]
        name: String,
    },
    /// Lists every account with its Connectors switch.
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Turns legacy Connectors (F4) on or off for an account.
    Connectors {
        #[command(flatten)]
        config: ConfigArgs,
        /// Account id (acct_…).
        #[arg(long)]
        account: String,
        #[arg(long, conflicts_with = "disable", required_unless_present = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
}

pub async fn accounts(command: AccountsCommand) -> anyhow::Result<()> {
    match command {
        AccountsCommand::Create { config, name } => {
            let config = config.load(None)?;
            let store = open_store(&config).await?;
            let id = AccountId::generate();
            let name = domain::account_name(&name)?;
            store.create_account(&id, &name, now_ms()).await?;
            println!("{id}");
        }
        AccountsCommand::List { config } => {
            let store = open_store(&config.load(None)?).await?;
            for account in store.accounts().await? {
                let connectors = if account.connectors_enabled { "connectors on" } else { "connectors off" };
                println!("{}  {}  ({connectors})", account.id, account.name);
            }
        }
        AccountsCommand::Connectors { config, account, enable, disable: _ } => {
            let store = open_store(&config.load(None)?).await?;
            let id = AccountId::parse(&account)?;
            store.set_connectors_enabled(&id, enable).await.map_err(|e| match e {
                store::StoreError::NotFound => anyhow::anyhow!("no account {id}"),
                other => other.into(),
            })?;
            let action = if enable { "account.connectors_enabled" } else { "account.connectors_disabled" };
            let name = store.account(&id).await?.name;
            store
                .record(&cli_entry(Some(id.clone()), action, "account", id.as_str(), &name, "by the operator".into()))
                .await?;
            println!("Connectors are {} for {name} ({id})", if enable { "on" } else { "off" });
        }
    }
    Ok(())
}

#[derive(Debug, clap::Subcommand)]
pub enum UsersCommand {
    /// Creates a user in an account (or the instance-wide operator with --role operator).
    Create {
        #[command(flatten)]
        config: ConfigArgs,
        /// Account id (acct_…); not given for the operator.
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// owner, admin, editor, viewer, or operator.
        #[arg(long, default_value = "owner")]
        role: String,
    },
    /// Sets a user's password for signing in (read from standard input, at least 12 characters).
    SetPassword {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        email: String,
    },
}

pub async fn users(command: UsersCommand) -> anyhow::Result<()> {
    match command {
        UsersCommand::Create { config, account, email, name, role } => {
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be owner, admin, editor, viewer or operator"))?;
            let account = account.as_deref().map(AccountId::parse).transpose()?;
            match (role, &account) {
                (Role::Operator, Some(_)) => anyhow::bail!("the operator is instance-wide: leave out --account"),
                (Role::Operator, None) => {}
                (_, None) => anyhow::bail!("--account is required for owner, admin, editor and viewer"),
                _ => {}
            }
            if !email.contains('@') {
                anyhow::bail!("--email {email:?} is not an email address");
            }
            let config = config.load(None)?;
            let store = open_store(&config).await?;
            let user = User {
                id: UserId::generate(),
                account_id: account,
                email: email.trim().to_string(),
                name: name.trim().to_string(),
                role,
            };
            store.create_user(&user, None, now_ms()).await?;
            store
                .record(&cli_entry(
                    user.account_id.clone(),
                    "user.created",
                    "user",
                    user.id.as_str(),
                    &user.email,
                    format!("role {}", user.role.as_str()),
                ))
                .await?;
            println!("{}", user.id);
        }
        UsersCommand::SetPassword { config, email } => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = vault::Password::new(line.trim_end_matches(['\r', '\n']).to_string());
            let hash = server::password::hash(&password).map_err(|e| anyhow::anyhow!(e))?;
            let config = config.load(None)?;
            let store = open_store(&config).await?;
            let user = store.user_by_email(&email).await.map_err(|_| anyhow::anyhow!("no user with email {email}"))?;
            store.set_password(&user.id, &hash).await?;
            store
                .record(&cli_entry(
                    user.account_id.clone(),
                    "user.password_set",
                    "user",
                    user.id.as_str(),
                    &user.email,
                    "password set".into(),
                ))
                .await?;
            eprintln!("password set for {}", user.email);
        }
    }
    Ok(())
}

#[derive(Debug, clap::Subcommand)]
pub enum TokensCommand {
    /// Creates an API token for a user and prints it once; only its hash is stored.
    Create {
        #[command(flatten)]
        config: ConfigArgs,
        /// The user the token acts as.
        #[arg(long)]
        email: String,
        /// What the token is for, e.g. "CI publish".
        #[arg(long, default_value = "api")]
        name: String,
    },
}

pub async fn tokens(command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::Create { config, email, name } => {
            let config = config.load(None)?;
            let store = open_store(&config).await?;
            let user = store.user_by_email(&email).await.map_err(|_| anyhow::anyhow!("no user with email {email}"))?;
            let token = server::api::new_api_token().map_err(|e| anyhow::anyhow!("{e}"))?;
            let id = format!("tok_{}", &UserId::generate().as_str()[5..]);
            store
                .create_api_token(&id, &user.id, &name, &server::api::hash_token(token.expose_secret()), now_ms())
                .await?;
            store
                .record(&cli_entry(
                    user.account_id.clone(),
                    "api_token.created",
                    "api_token",
                    &id,
                    &name,
                    format!("acts as {}", user.email),
                ))
                .await?;
            println!("{}", token.expose_secret());
            eprintln!("This token is shown once. It acts as {} ({}).", user.email, user.role.as_str());
        }
    }
    Ok(())
}

/// An audit entry for an operator's command-line action.
fn cli_entry(
    account: Option<AccountId>,
    action: &str,
    kind: &str,
    id: &str,
    label: &str,
    detail: String,
) -> AuditEntry {
    let actor = std::env::var("USER").map(|u| format!("cli:{u}")).unwrap_or_else(|_| "cli".into());
    AuditEntry {
        account_id: account,
        at: now_ms(),
        actor,
        actor_kind: ActorKind::Cli,
        action: action.into(),
        target_kind: kind.into(),
        target_id: Some(id.into()),
        target_label: Some(label.into()),
        detail: Some(detail),
        remote_addr: None,
    }
}
