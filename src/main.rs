//! The `sessiond` command: parse, load the configuration, call into the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use sessiond::config::Config;
use sessiond::service::clock::SystemClock;
use sessiond::startup::{backup, open_migrated_service, open_service, Application};
use sessiond::telemetry;

mod verbs;
use verbs::{check_user_arguments, directory, sessions, user};

#[derive(Parser)]
#[command(
    name = "sessiond",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("SESSIOND_COMMIT"), ")"),
    about = "Session service for legacy SOAP clients",
    after_help = sessiond::config::help()
)]
struct Cli {
    /// TOML settings file (default: SESSIOND_CONFIG, else ./sessiond.toml if present)
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve SOAP (migrates the database first)
    #[command(after_help = sessiond::config::help())]
    Serve,
    /// Apply pending database migrations and exit
    Migrate,
    /// Write a consistent copy of the SQLite database to FILE (owner-only) while it serves
    Backup {
        /// Where the copy goes; refused if it exists, unless --force
        file: PathBuf,
        /// Overwrite FILE if it exists
        #[arg(long)]
        force: bool,
    },
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect and end sessions
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// The directory (LDAP or Active Directory) of SESSIOND_LDAP_URL
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Check the settings without starting anything
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum DirectoryCommand {
    /// Search for a user as a login would: its DN, department, groups and rights; with
    /// --password-stdin, also whether a bind with that password succeeds
    Check {
        /// The user ID to look up
        user: String,
        /// Read a password from standard input and try a bind with it
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Read the settings as `serve` would (file and environment), print each effective value
    /// and where it came from (secrets masked), and exit non-zero naming a bad one
    #[command(after_help = sessiond::config::help())]
    Check,
    /// Print a TOML file with every setting commented out at its default
    Example,
}

#[derive(Args)]
struct PasswordInput {
    /// Read the password from standard input (it is never an argument): one line from a pipe,
    /// or, on a terminal, typed twice without echo
    #[arg(long, required = true)]
    password_stdin: bool,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user
    Add {
        /// The new user's ID
        user: String,
        #[command(flatten)]
        password: PasswordInput,
        /// The user's department, returned by getSessionUser
        #[arg(long)]
        department: Option<String>,
    },
    /// Lift a user's lock-out (after too many failed password checks); the password stays
    Unlock {
        /// The user's ID
        user: String,
    },
    /// Set a user's password (also lifts a lock-out) and end the user's sessions
    Passwd {
        /// The user's ID
        user: String,
        #[command(flatten)]
        password: PasswordInput,
        /// Leave the user's sessions running (by default they end, reason: password-changed)
        #[arg(long)]
        keep_sessions: bool,
    },
    /// Delete a user, ending all of its sessions (reason: deleted; the history keeps them)
    Delete {
        /// The user's ID
        user: String,
    },
    /// Disable a user and end all of its sessions
    Disable {
        /// The user's ID
        user: String,
    },
    /// Enable a disabled user
    Enable {
        /// The user's ID
        user: String,
    },
    /// Give a user a right: AdministratorRight, UpdateSessionRight or ViewSessionRight
    Grant {
        /// The user's ID
        user: String,
        /// AdministratorRight, UpdateSessionRight or ViewSessionRight
        right: String,
    },
    /// Take a right from a user (fails when the user does not hold it)
    Revoke {
        /// The user's ID
        user: String,
        /// AdministratorRight, UpdateSessionRight or ViewSessionRight
        right: String,
    },
    /// Set a user's department, or clear it when none is given
    SetDepartment {
        /// The user's ID
        user: String,
        /// The new department; without it the department is cleared
        department: Option<String>,
    },
    /// List users
    List,
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// List active sessions
    ListActive,
    /// List stored sessions that have expired
    ListExpired,
    /// End a session (reason: deleted)
    Delete {
        /// The session's ID
        // A session ID may start with '-' (URL-safe base64): it is a value, not an option.
        #[arg(allow_hyphen_values = true)]
        session_id: String,
    },
    /// Remove every expired session
    DeleteExpired,
    /// End every session of one user, or of everyone (reason: deleted)
    #[command(group(clap::ArgGroup::new("whose").required(true).args(["user", "all"])))]
    End {
        /// End the sessions of this user
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// End every session of every user (needs --yes)
        #[arg(long)]
        all: bool,
        /// Confirm --all
        #[arg(long, conflicts_with = "user")]
        yes: bool,
    },
    /// Show a session's details, ended ones included
    Info {
        /// The session's ID
        #[arg(allow_hyphen_values = true)]
        session_id: String,
    },
}

/// Allocations this large always get their own mapping, given back to the system when freed.
/// glibc's default threshold moves up to 32 MiB after the first large free, after which each
/// 19 MiB Argon2 work area stayed in an arena: a login flood left ~60 MiB per arena resident.
const MMAP_THRESHOLD: libc::c_int = 4 * 1024 * 1024;

fn main() -> ExitCode {
    // SAFETY: mallopt only sets an allocator parameter; called first, before other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Config(ConfigCommand::Check) => return config_check(cli.config.as_deref()),
        Command::Config(ConfigCommand::Example) => {
            print!("{}", sessiond::config::example(EXAMPLE_HEADER, &[]));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    // A verb prints what it did on standard output; on standard error only warnings and its
    // security events (who did what: docs/behaviour.md §6 wants every admin action logged,
    // from the CLI too), never its chatter.
    let default_level = if matches!(cli.command, Command::Serve) {
        "info"
    } else {
        "warn,sessiond::security=info"
    };
    // The settings come first: they say how to log. A bad one is reported on stderr as before.
    let result = Config::load(cli.config.as_deref())
        .map_err(|e| e.to_string())
        .and_then(|config| {
            telemetry::init_logging(config.log_format, default_level);
            // Capped values and misspelt variables, before anything else happens.
            for notice in &config.notices {
                log::warn!("{notice}");
            }
            run(cli.command, config)
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sessiond: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, config: Config) -> Result<(), String> {
    match command {
        Command::Serve => serve(config),
        Command::Config(_) => unreachable!("handled before the settings load"),
        Command::Migrate => {
            open_migrated_service(&config, Arc::new(SystemClock)).map_err(|e| e.to_string())?;
            println!("database is up to date");
            Ok(())
        }
        Command::Backup { file, force } => {
            let bytes = backup(&config, &file, force)?;
            println!(
                "backed up {} to {} ({bytes} bytes)",
                config.database.describe(),
                file.display()
            );
            Ok(())
        }
        Command::User(cmd) => {
            check_user_arguments(&cmd)?;
            let service =
                open_service(&config, Arc::new(SystemClock)).map_err(|e| e.to_string())?;
            user(&service, cmd)
        }
        Command::Directory(cmd) => {
            let service =
                open_service(&config, Arc::new(SystemClock)).map_err(|e| e.to_string())?;
            directory(&service, cmd)
        }
        Command::Sessions(cmd) => {
            if let SessionsCommand::End {
                all: true,
                yes: false,
                ..
            } = cmd
            {
                // Refused before the database is opened: nothing has happened yet.
                return Err(
                    "sessions end --all ends every session of every user: add --yes to confirm"
                        .into(),
                );
            }
            let service =
                open_service(&config, Arc::new(SystemClock)).map_err(|e| e.to_string())?;
            sessions(&service, cmd)
        }
    }
}

const EXAMPLE_HEADER: &str = "\
# sessiond settings (TOML). Every setting is listed, commented out at its default; the
# environment variable named with each wins over this file. Durations: 90s, 30m, 2h, 30d.
# Check a change with `sessiond --config FILE config check` before a restart.
";

/// `config check`: the settings as `serve` reads them, one a line with where each came from.
/// Nothing is opened or started; a bad setting is the same message `serve` would stop with.
fn config_check(file: Option<&std::path::Path>) -> ExitCode {
    let checked = match Config::check(file) {
        Ok(checked) => checked,
        Err(e) => {
            eprintln!("sessiond: {e}");
            return ExitCode::FAILURE;
        }
    };
    match &checked.file {
        Some(path) => println!("config file: {}", path.display()),
        None => println!(
            "config file: none (no --config, no {}, no ./{})",
            sessiond::config::CONFIG_FILE_VAR,
            sessiond::config::DEFAULT_CONFIG_FILE
        ),
    }
    let width = checked
        .settings
        .iter()
        .map(|e| e.setting.env.len())
        .max()
        .unwrap_or(0);
    let value_width = checked
        .settings
        .iter()
        .map(|e| e.value.chars().count())
        .max()
        .unwrap_or(0)
        .min(40);
    for e in &checked.settings {
        println!(
            "{:<width$}  {:<value_width$}  {}",
            e.setting.env, e.value, e.source
        );
    }
    for notice in &checked.config.notices {
        println!("warning: {notice}");
    }
    println!("settings ok");
    ExitCode::SUCCESS
}

fn serve(config: Config) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config)
            .await
            .map_err(|e| e.to_string())?;
        // Migrated and listening: a `Type=notify` unit counts as started from here. Without
        // NOTIFY_SOCKET (not under systemd) this does nothing.
        if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
            log::warn!("cannot tell systemd we are ready: {e}");
        }
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}
