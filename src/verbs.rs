//! The CLI's verbs (`user …`, `sessions …`): each argument parsed into its domain type before
//! the database is opened, then one service call, and what it did printed and audited. Part of
//! the binary, beside `main.rs`, not of the library.

use std::io::{BufRead, IsTerminal};

use sessiond::domain::{Department, EndReason, Password, Right, SessionId, UserId};
use sessiond::service::{SessionService, SessionView};
use sessiond::telemetry;

use crate::{DirectoryCommand, SessionsCommand, UserCommand};

/// The password of `--password-stdin`: on a terminal typed twice without echo (the two must
/// match), else one line from standard input, as a script pipes it.
pub(crate) fn read_password(user: &str) -> Result<Password, String> {
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
pub(crate) fn check_user_arguments(cmd: &UserCommand) -> Result<(), String> {
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
        | UserCommand::Unlock { user }
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

/// "1 session", "2 sessions": what a verb did, in words.
fn sessions_count(n: usize) -> String {
    if n == 1 {
        "1 session".to_owned()
    } else {
        format!("{n} sessions")
    }
}

fn expired_count(n: usize) -> String {
    if n == 1 {
        "1 expired session".to_owned()
    } else {
        format!("{n} expired sessions")
    }
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

pub(crate) fn user(s: &SessionService, cmd: UserCommand) -> Result<(), String> {
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
        UserCommand::Unlock { user } => {
            if s.unlock_user(&parse_user(&user)?).map_err(e)? {
                audit("user_unlock", &user, "lock-out lifted");
                println!("unlocked {user}");
            } else {
                // What was asked holds, as for a right already held.
                println!("{user} was not locked");
            }
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
                println!("password of {user} set; ended {}", sessions_count(ended));
            }
        }
        UserCommand::Delete { user } => {
            let ended = s.delete_user(&parse_user(&user)?).map_err(e)?;
            audit("user_delete", &user, "user deleted");
            println!("deleted user {user}; ended {}", sessions_count(ended));
        }
        UserCommand::Disable { user } => {
            let ended = s.disable_user(&parse_user(&user)?).map_err(e)?;
            audit("user_disable", &user, "user disabled");
            println!("disabled {user}; ended {}", sessions_count(ended));
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
            println!(
                "{:<24} {:<16} {:<9} {:<48} {:<9} DN",
                "USER", "DEPARTMENT", "STATE", "RIGHTS", "SOURCE"
            );
            for u in s.list_users().map_err(e)? {
                let state = match (u.disabled, u.locked) {
                    (true, _) => "disabled",
                    (false, true) => "locked",
                    _ => "enabled",
                };
                let rights: Vec<_> = u.rights.iter().map(|r| r.as_str()).collect();
                let rights = if rights.is_empty() {
                    "-".to_owned()
                } else {
                    rights.join(",")
                };
                println!(
                    "{:<24} {:<16} {:<9} {:<48} {:<9} {}",
                    u.user_id,
                    u.department.as_deref().unwrap_or("-"),
                    state,
                    rights,
                    u.source,
                    u.dn.as_deref().unwrap_or("-")
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
            v.record.session_id,
            v.record.user_id,
            v.record.client_type,
            utc(v.record.created_at),
            utc(v.expires_at),
            v.record.host.as_deref().unwrap_or("-")
        );
    }
}

pub(crate) fn sessions(s: &SessionService, cmd: SessionsCommand) -> Result<(), String> {
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
                &format!("{} removed", expired_count(n)),
            );
            println!("removed {}", expired_count(n));
        }
        SessionsCommand::End {
            user: Some(user), ..
        } => {
            let n = s
                .end_sessions_of_user(&parse_user(&user)?, EndReason::Deleted)
                .map_err(e)?;
            audit(
                "sessions_end",
                &user,
                &format!("{} ended", sessions_count(n)),
            );
            println!("ended {} of {user}", sessions_count(n));
        }
        SessionsCommand::End { .. } => {
            let n = s.end_all_sessions(EndReason::Deleted).map_err(e)?;
            audit(
                "sessions_end_all",
                "-",
                &format!("{} ended", sessions_count(n)),
            );
            println!("ended {}", sessions_count(n));
        }
        SessionsCommand::Info { session_id } => {
            let v = s.session_info(&parse_session(&session_id)?).map_err(e)?;
            let t = utc;
            let opt = |o: Option<&str>| o.unwrap_or("-").to_owned();
            println!("session:        {}", v.record.session_id);
            println!("user:           {}", v.record.user_id);
            println!("client type:    {}", v.record.client_type);
            println!("client name:    {}", opt(v.record.client_name.as_deref()));
            println!("host:           {}", opt(v.record.host.as_deref()));
            println!("location:       {}", v.record.location);
            println!("created:        {}", t(v.record.created_at));
            println!("last activity:  {}", t(v.last_activity));
            println!("expires:        {}", t(v.expires_at));
            println!(
                "ended:          {}",
                v.ended_at.map(t).unwrap_or_else(|| "-".into())
            );
            println!("end reason:     {}", opt(v.end_reason.as_deref()));
            println!("created by:     {}", opt(v.record.created_by.as_deref()));
        }
    }
    Ok(())
}

/// `directory check USER [--password-stdin]`: what a login would find, and why not.
pub(crate) fn directory(s: &SessionService, cmd: DirectoryCommand) -> Result<(), String> {
    use sessiond::service::identity::directory::{Answer, Entry, Found};
    let DirectoryCommand::Check {
        user,
        password_stdin,
    } = cmd;
    let id = parse_user(&user)?;
    let password = if password_stdin {
        Some(read_password(&user)?)
    } else {
        None
    };
    let check = s
        .directory_check(&id, password.as_ref())
        .map_err(|e| e.to_string())?;
    for url in &check.clear_text {
        println!("warning: {url} is plain ldap:// without StartTLS: passwords travel in clear");
    }
    if check.local_user {
        println!(
            "note: {user} is a local user: logins check its password here and never ask the \
             directory"
        );
    }
    let show = |e: &Entry| {
        println!("dn:          {}", e.dn);
        println!("department:  {}", e.department.as_deref().unwrap_or("-"));
        let groups = if e.groups.is_empty() {
            "-".to_owned()
        } else {
            e.groups.join("; ")
        };
        println!("groups:      {groups}");
        let rights: Vec<_> = e.rights.iter().map(|r| r.as_str()).collect();
        let rights = if rights.is_empty() {
            "-".to_owned()
        } else {
            rights.join(",")
        };
        println!("rights:      {rights}");
        if e.disabled {
            println!("state:       disabled in the directory (logins refused)");
        } else if e.locked {
            println!("state:       locked in the directory (logins refused)");
        } else {
            println!("state:       enabled");
        }
    };
    match &check.found {
        Err(why) => return Err(format!("the directory cannot be searched: {why}")),
        Ok(Found::NoEntry) => return Err(format!("no entry in the directory for {user}")),
        Ok(Found::Several(n)) => {
            return Err(format!(
                "{n} entries in the directory match {user}: the user filter must find one"
            ))
        }
        Ok(Found::One(entry)) => show(entry),
    }
    match check.bind {
        None => {}
        Some(Ok(Answer::Accepted(_))) => println!("bind:        succeeded"),
        Some(Ok(Answer::WrongPassword(_))) => {
            return Err("bind refused: wrong password (invalidCredentials)".into())
        }
        Some(Ok(Answer::DisabledThere(_))) => {
            return Err("not bound: the entry is disabled in the directory".into())
        }
        Some(Ok(Answer::LockedThere(_))) => {
            return Err("not bound: the entry is locked in the directory".into())
        }
        Some(Ok(Answer::NoEntry | Answer::Several(_))) => {
            return Err("not bound: the entry was not found again".into())
        }
        Some(Err(why)) => return Err(format!("bind failed: {why}")),
    }
    Ok(())
}
