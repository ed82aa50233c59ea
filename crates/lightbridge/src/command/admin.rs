//! Operator commands: `migrate`, `print-config`, `keys generate`, `accounts create|list|connectors`,
//! `users create|set-password`, `tokens create`.

//!
//! Every change goes through the service layer's actions (as the operator, `cli:$USER` in the
//! audit log), the same ones the API and the Admin Center call.

use domain::{AccountId, Role};
use service::{Actor, ServiceError, accounts, keys, users};

use super::common::{ConfigArgs, open_service, open_store};

/// A service error in the operator's words (fields named as the command's flags).
fn cli_error(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::Invalid(fields) => anyhow::anyhow!(
            "{}",
            fields.iter().map(|(f, m)| format!("--{}: {m}", f.replace('_', "-"))).collect::<Vec<_>>().join("; ")
        ),
        other => anyhow::anyhow!("{other}"),
    }
}

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
            let svc = open_service(&config).await?;
            let actor = Actor::cli();
            let started = std::time::Instant::now();
            let mut total = 0;
            loop {
                let step = keys::rotate_step(&svc, &actor, batch).await.map_err(cli_error)?;
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
            keys::rotated(&svc, &actor, total, fingerprint).await.map_err(cli_error)?;
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
    /// Routes an email domain to an account's single sign-on (you vouch that the account owns
    /// the domain): people with that email domain find their provider from the sign-in page.
    SsoDomain {
        #[command(flatten)]
        config: ConfigArgs,
        /// Account id (acct_…).
        #[arg(long)]
        account: String,
        /// The domain, e.g. example.com.
        #[arg(long)]
        domain: String,
        /// Stops routing the domain instead.
        #[arg(long)]
        remove: bool,
    },
    /// Names the owner who may still sign in with a password while single sign-on is the only
    /// way into the account (the way in when the provider is down), or clears it.
    BreakGlass {
        #[command(flatten)]
        config: ConfigArgs,
        /// Account id (acct_…).
        #[arg(long)]
        account: String,
        /// An owner of the account.
        #[arg(long, conflicts_with = "clear", required_unless_present = "clear")]
        email: Option<String>,
        #[arg(long)]
        clear: bool,
    },
}

pub async fn accounts(command: AccountsCommand) -> anyhow::Result<()> {
    let actor = Actor::cli();
    match command {
        AccountsCommand::Create { config, name } => {
            let svc = open_service(&config.load(None)?).await?;
            let id = accounts::create(&svc, &actor, &name).await.map_err(cli_error)?;
            println!("{id}");
        }
        AccountsCommand::List { config } => {
            let svc = open_service(&config.load(None)?).await?;
            for account in accounts::list(&svc, &actor).await.map_err(cli_error)? {
                let connectors = if account.connectors_enabled { "connectors on" } else { "connectors off" };
                println!("{}  {}  ({connectors})", account.id, account.name);
            }
        }
        AccountsCommand::Connectors { config, account, enable, disable: _ } => {
            let svc = open_service(&config.load(None)?).await?;
            AccountId::parse(&account)?;
            let found = accounts::set_connectors(&svc, &actor, &account, enable).await.map_err(|e| match e {
                ServiceError::NotFound => anyhow::anyhow!("no account {account}"),
                other => cli_error(other),
            })?;
            println!("Connectors are {} for {} ({})", if enable { "on" } else { "off" }, found.name, found.id);
        }
        AccountsCommand::SsoDomain { config, account, domain, remove } => {
            let svc = open_service(&config.load(None)?).await?;
            let done = if remove {
                service::sso::remove_domain(&svc, &actor, &account, &domain).await
            } else {
                service::sso::add_domain(&svc, &actor, &account, &domain).await
            };
            done.map_err(|e| match e {
                ServiceError::NotFound if remove => anyhow::anyhow!("{domain} is not routed to {account}"),
                ServiceError::NotFound => anyhow::anyhow!("no account {account}"),
                other => cli_error(other),
            })?;
            println!(
                "{domain} {} {account}",
                if remove { "no longer leads to" } else { "leads to the single sign-on of" }
            );
        }
        AccountsCommand::BreakGlass { config, account, email, clear: _ } => {
            let svc = open_service(&config.load(None)?).await?;
            service::sso::set_break_glass(&svc, &actor, &account, email.as_deref()).await.map_err(|e| match e {
                ServiceError::NotFound => anyhow::anyhow!("no account {account} or no such person"),
                other => cli_error(other),
            })?;
            match email {
                Some(email) => println!("{email} may sign in with a password while single sign-on is the only way in"),
                None => {
                    println!("no one signs in to {account} with a password while single sign-on is the only way in")
                }
            }
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
    /// Removes a user's two-factor sign-in (a lost phone and lost recovery codes) and ends their
    /// sessions; they set it up again at their next sign-in if their account requires it.
    ResetTwoFactor {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long)]
        email: String,
    },
}

pub async fn users(command: UsersCommand) -> anyhow::Result<()> {
    let actor = Actor::cli();
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
            let svc = open_service(&config.load(None)?).await?;
            let user = users::create_user(&svc, &actor, account, &email, &name, role).await.map_err(|e| match e {
                ServiceError::NotFound => anyhow::anyhow!("no such account"),
                other => cli_error(other),
            })?;
            println!("{}", user.id);
        }
        UsersCommand::SetPassword { config, email } => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = vault::Password::new(line.trim_end_matches(['\r', '\n']).to_string());
            let svc = open_service(&config.load(None)?).await?;
            let user = users::set_password(&svc, &actor, &email, password).await.map_err(|e| match e {
                ServiceError::NotFound => anyhow::anyhow!("no user with email {email}"),
                ServiceError::Invalid(fields) => {
                    anyhow::anyhow!("{}", fields.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join("; "))
                }
                other => cli_error(other),
            })?;
            eprintln!("password set for {}", user.email);
        }
        UsersCommand::ResetTwoFactor { config, email } => {
            let svc = open_service(&config.load(None)?).await?;
            let user = service::two_factor::reset(&svc, &actor, &email).await.map_err(|e| match e {
                ServiceError::NotFound => anyhow::anyhow!("no user with email {email}"),
                other => cli_error(other),
            })?;
            eprintln!("two-factor sign-in reset for {}; their sessions are ended", user.email);
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
            let svc = open_service(&config.load(None)?).await?;
            let created = users::create_token_for(&svc, &Actor::cli(), &email, &name).await.map_err(|e| match e {
                ServiceError::NotFound => anyhow::anyhow!("no user with email {email}"),
                other => cli_error(other),
            })?;
            println!("{}", created.token.expose_secret());
            eprintln!("This token is shown once. It acts as {} ({}).", created.user.email, created.user.role.as_str());
        }
    }
    Ok(())
}
