//! The directory read again outside logins: the periodic sync of directory users with live
//! sessions, and `sessiond directory check`.

use super::super::{Result, ServiceError, SessionService};
use super::directory::{Answer, DirectoryError, Entry, Found};
use crate::domain::{EndReason, Password, Right, UserId};
use crate::store::accounts;
use crate::store::users;
use crate::telemetry::SECURITY;

/// What `sessiond directory check USER` found, for the CLI to print.
#[derive(Debug)]
pub struct DirectoryCheck {
    /// The URLs that send passwords in clear.
    pub clear_text: Vec<String>,
    /// A local user of that ID exists: logins never ask the directory for it.
    pub local_user: bool,
    /// The search as a login makes it, or why it failed.
    pub found: std::result::Result<Found, String>,
    /// With a password: the bind's answer, or why it failed.
    pub bind: Option<std::result::Result<Answer, String>>,
}

impl SessionService {
    /// Whether a directory is configured.
    pub fn has_directory(&self) -> bool {
        self.directory.is_some()
    }

    /// Searches for `user_id` as a login would and, with a password, binds as it.
    pub fn directory_check(
        &self,
        user_id: &UserId,
        password: Option<&Password>,
    ) -> Result<DirectoryCheck> {
        let Some(directory) = &self.directory else {
            return Err(ServiceError::invalid(
                "no directory is configured (SESSIOND_LDAP_URL is not set)",
            ));
        };
        let local_user = users::find(&mut *self.conn()?, user_id.as_str())?
            .is_some_and(|u| u.source == users::LOCAL);
        let found = directory.find(user_id.as_str()).map_err(|e| e.to_string());
        let bind = password.map(|p| {
            if p.expose().is_empty() {
                return Err("an empty password is refused without asking the directory".into());
            }
            directory
                .check(user_id.as_str(), p.expose())
                .map_err(|e| e.to_string())
        });
        Ok(DirectoryCheck {
            clear_text: directory
                .settings()
                .clear_text_urls()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            local_user,
            found,
            bind,
        })
    }

    /// Reads every directory user with stored sessions again: one gone from the directory,
    /// disabled or locked there has its sessions ended (`user-disabled`) and its rights
    /// cleared; the others get their rights and department as read. A directory that does
    /// not answer stops this round (nothing is ended for it); the next round tries again.
    pub fn sync_directory(&self) -> Result<()> {
        let Some(directory) = &self.directory else {
            return Ok(());
        };
        let names = accounts::directory_users_with_sessions(&mut *self.conn()?)?;
        for name in names {
            let Ok(id) = UserId::parse(&name) else {
                continue;
            };
            let found = match directory.find(&name) {
                Ok(found) => found,
                Err(e @ (DirectoryError::Unreachable(_) | DirectoryError::Failed(_))) => {
                    log::warn!("directory sync stopped for this round: {e}");
                    return Ok(());
                }
            };
            let gone = match &found {
                Found::NoEntry => Some("not_found"),
                Found::Several(_) => Some("several_entries"),
                Found::One(e) if e.disabled => Some("disabled_in_directory"),
                Found::One(e) if e.locked => Some("locked_in_directory"),
                Found::One(_) => None,
            };
            if let Found::One(entry) = &found {
                self.store_directory_user(&id, &without_rights_if(entry, gone.is_some()))?;
            } else {
                users::set_rights(&mut *self.conn()?, &name, false, false, false)?;
            }
            if let Some(reason) = gone {
                let ended = self.end_sessions_of_user(&id, EndReason::UserDisabled)?;
                log::warn!(
                    target: SECURITY,
                    event = "directory_sync",
                    user = name.as_str(),
                    reason = reason,
                    source = users::DIRECTORY;
                    "directory user {reason}: {ended} sessions ended"
                );
            }
        }
        Ok(())
    }
}

/// The entry as stored: a user who may not log in there keeps no right here either.
fn without_rights_if(entry: &Entry, refused: bool) -> Entry {
    let mut entry = entry.clone();
    if refused {
        entry.rights = Vec::<Right>::new();
    }
    entry
}
