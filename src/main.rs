//! The `sessiond` command: parse, load the configuration, call into the library.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use sessiond::config::Config;
use sessiond::domain::{Department, EndReason, Password, Right, SessionId, UserId};
use sessiond::service::clock::SystemClock;
use sessiond::service::{SessionService, SessionView};
use sessiond::startup::{open_service, Application};
use sessiond::telemetry;

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
    /// Manage users
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect and end sessions
    #[command(subcommand)]
    Sessions(SessionsCommand),
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
    // A verb logs its warnings and its security events (who did what), not its chatter.
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
        Command::Migrate => {
            open_service(&config, Arc::new(SystemClock)).map_err(|e| e.to_string())?;
            println!("database is up to date");
            Ok(())
        }
        Command::User(cmd) => {
            check_user_arguments(&cmd)?;
            let service =
                open_service(&config, Arc::new(SystemClock)).map_err(|e| e.to_string())?;
            user(&service, cmd)
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

fn serve(config: Config) -> Result<(), String> {
    for notice in &config.notices {
        log::warn!("{notice}");
    }
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

/// The password of `--password-stdin`: on a terminal typed twice without echo (the two must
/// match), else one line from standard input, as a script pipes it.
fn read_password(user: &str) -> Result<Password, String> {
    let password = if std::io::stdin().is_terminal() {
        let ask = |prompt: &str| {
            rpassword::prompt_password(prompt)
                .map_err(|e| format!("cannot read the password from the terminal: {e}"))
        };
        let first = ask(&format!("Password for {user}: "))?;
        if first.is_empty() {
            return Err("no password typed: nothing changed".into());
        }
        if ask("The same password again: ")? != first {
            return Err("the two passwords differ: nothing changed".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            return Err("no password on standard input".into());
        }
        password
    };
    Password::parse(password).map_err(|e| e.to_string())
}

// The CLI's edge: each argument becomes its domain type here, and a bad one is a message
// naming the problem before anything touches the database.

fn parse_right(right: &str) -> Result<Right, String> {
    right.parse::<Right>().map_err(|e| e.to_string())
}

fn parse_user(user: &str) -> Result<UserId, String> {
    // Quoted with escapes: a control character in it is shown, not sent to the terminal.
    UserId::parse(user).map_err(|e| format!("{user:?} is not a valid user ID: {e}"))
}

fn parse_department(department: Option<&str>) -> Result<Option<Department>, String> {
    department
        .map(Department::parse)
        .transpose()
        .map_err(|e| e.to_string())
}

/// Every argument of a user verb parsed once before the database is opened, so that a bad one
/// stops the verb with nothing made, not even the database file.
fn check_user_arguments(cmd: &UserCommand) -> Result<(), String> {
    match cmd {
        UserCommand::Add {
            user, department, ..
        } => parse_user(user).and(parse_department(department.as_deref()).map(drop)),
        UserCommand::SetDepartment { user, department } => {
            parse_user(user).and(parse_department(department.as_deref()).map(drop))
        }
        UserCommand::Grant { user, right } | UserCommand::Revoke { user, right } => {
            parse_user(user).and(parse_right(right).map(drop))
        }
        UserCommand::Passwd { user, .. }
        | UserCommand::Delete { user }
        | UserCommand::Disable { user }
        | UserCommand::Enable { user } => parse_user(user).map(drop),
        UserCommand::List => Ok(()),
    }
}

/// A session ID that could name no session is, to the operator, one that is not there.
fn parse_session(id: &str) -> Result<SessionId, String> {
    SessionId::parse(id).map_err(|_| sessiond::service::ServiceError::SessionNotFound.to_string())
}

/// Logs an admin action done through the CLI, with the OS user who ran it as its actor.
fn audit(action: &str, user: &str, what: &str) {
    log::info!(
        target: telemetry::SECURITY,
        event = "admin",
        actor = telemetry::os_user().as_str(),
        action = action,
        user = user;
        "{what}"
    );
}

fn user(s: &SessionService, cmd: UserCommand) -> Result<(), String> {
    let e = |e: sessiond::service::ServiceError| e.to_string();
    match cmd {
        UserCommand::Add {
            user, department, ..
        } => {
            let (id, department) = (parse_user(&user)?, parse_department(department.as_deref())?);
            s.add_user(&id, &read_password(&user)?, department.as_ref())
                .map_err(e)?;
            audit("user_add", &user, "user added");
            println!("added user {user}");
        }
        UserCommand::Passwd {
            user,
            keep_sessions,
            ..
        } => {
            let id = parse_user(&user)?;
            let ended = s
                .set_password(&id, &read_password(&user)?, keep_sessions)
                .map_err(e)?;
            audit("user_passwd", &user, "password set");
            if keep_sessions {
                println!("password of {user} set; sessions kept");
            } else {
                println!("password of {user} set; ended {ended} sessions");
            }
        }
        UserCommand::Delete { user } => {
            let ended = s.delete_user(&parse_user(&user)?).map_err(e)?;
            audit("user_delete", &user, "user deleted");
            println!("deleted user {user}; ended {ended} sessions");
        }
        UserCommand::Disable { user } => {
            let ended = s.disable_user(&parse_user(&user)?).map_err(e)?;
            audit("user_disable", &user, "user disabled");
            println!("disabled {user}; ended {ended} sessions");
        }
        UserCommand::Enable { user } => {
            s.enable_user(&parse_user(&user)?).map_err(e)?;
            audit("user_enable", &user, "user enabled");
            println!("enabled {user}");
        }
        UserCommand::Grant { user, right } => {
            let right = parse_right(&right)?;
            if s.change_right(&parse_user(&user)?, right, true)
                .map_err(e)?
            {
                audit("user_grant", &user, &format!("granted {right}"));
                println!("granted {right} to {user}");
            } else {
                // What was asked holds: like `usermod -aG` for a group already had, not an error.
                println!("{user} already holds {right}");
            }
        }
        UserCommand::Revoke { user, right } => {
            let right = parse_right(&right)?;
            if !s
                .change_right(&parse_user(&user)?, right, false)
                .map_err(e)?
            {
                // A script that revokes what was never there has the wrong user or right.
                return Err(format!("{user} does not hold {right}: nothing revoked"));
            }
            audit("user_revoke", &user, &format!("revoked {right}"));
            println!("revoked {right} from {user}");
        }
        UserCommand::SetDepartment { user, department } => {
            let parsed = parse_department(department.as_deref())?;
            s.set_department(&parse_user(&user)?, parsed.as_ref())
                .map_err(e)?;
            audit("user_set_department", &user, "department set");
            match department {
                Some(d) => println!("department of {user} set to {d}"),
                None => println!("department of {user} cleared"),
            }
        }
        UserCommand::List => {
            println!("{:<24} {:<16} {:<9} RIGHTS", "USER", "DEPARTMENT", "STATE");
            for u in s.list_users().map_err(e)? {
                let state = match (u.disabled, u.locked) {
                    (true, _) => "disabled",
                    (false, true) => "locked",
                    _ => "enabled",
                };
                let rights: Vec<_> = u.rights.iter().map(|r| r.as_str()).collect();
                println!(
                    "{:<24} {:<16} {:<9} {}",
                    u.user_id,
                    u.department.as_deref().unwrap_or("-"),
                    state,
                    rights.join(",")
                );
            }
        }
    }
    Ok(())
}

fn print_header() {
    println!(
        "{:<44} {:<16} {:<11} {:<24} {:<24} HOST",
        "SESSION", "USER", "TYPE", "CREATED", "EXPIRES"
    );
}

/// A time as every verb prints it: UTC, ISO 8601 with milliseconds.
fn utc(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn print_sessions(list: &[SessionView]) {
    for v in list {
        println!(
            "{:<44} {:<16} {:<11} {:<24} {:<24} {}",
            v.session_id,
            v.user_id,
            v.client_type,
            utc(v.created_at),
            utc(v.expires_at),
            v.host.as_deref().unwrap_or("-")
        );
    }
}

fn sessions(s: &SessionService, cmd: SessionsCommand) -> Result<(), String> {
    let e = |e: sessiond::service::ServiceError| e.to_string();
    match cmd {
        SessionsCommand::ListActive => {
            print_header();
            s.list_sessions(false, print_sessions).map_err(e)?;
        }
        SessionsCommand::ListExpired => {
            print_header();
            s.list_sessions(true, print_sessions).map_err(e)?;
        }
        SessionsCommand::Delete { session_id } => {
            let id = parse_session(&session_id)?;
            s.delete_session(&id).map_err(e)?;
            // The session is named redacted, like everywhere in the log.
            audit("session_delete", "-", &format!("session {id} deleted"));
            println!("session deleted");
        }
        SessionsCommand::DeleteExpired => {
            let n = s.remove_expired().map_err(e)?;
            audit(
                "sessions_delete_expired",
                "-",
                &format!("{n} expired sessions removed"),
            );
            println!("removed {n} expired sessions");
        }
        SessionsCommand::End {
            user: Some(user), ..
        } => {
            let n = s
                .end_sessions_of_user(&parse_user(&user)?, EndReason::Deleted)
                .map_err(e)?;
            println!("ended {n} sessions of {user}");
        }
        SessionsCommand::End { .. } => {
            let n = s.end_all_sessions(EndReason::Deleted).map_err(e)?;
            println!("ended {n} sessions");
        }
        SessionsCommand::Info { session_id } => {
            let v = s.session_info(&parse_session(&session_id)?).map_err(e)?;
            let t = utc;
            let opt = |o: Option<&str>| o.unwrap_or("-").to_owned();
            println!("session:        {}", v.session_id);
            println!("user:           {}", v.user_id);
            println!("client type:    {}", v.client_type);
            println!("client name:    {}", opt(v.client_name.as_deref()));
            println!("host:           {}", opt(v.host.as_deref()));
            println!("location:       {}", v.location);
            println!("created:        {}", t(v.created_at));
            println!("last activity:  {}", t(v.last_activity));
            println!("expires:        {}", t(v.expires_at));
            println!(
                "ended:          {}",
                v.ended_at.map(t).unwrap_or_else(|| "-".into())
            );
            println!("end reason:     {}", opt(v.end_reason.as_deref()));
            println!("created by:     {}", opt(v.created_by.as_deref()));
        }
    }
    Ok(())
}
