//! The log: its format (text or one JSON object a line), the security events' target, and
//! who the CLI's actor is.

use std::io::Write;

/// The log target of security events (logins, lock-outs, ended sessions, admin actions).
pub const SECURITY: &str = "sessiond::security";

pub use crate::domain::LogFormat;

/// Installs the logger: `RUST_LOG` filters (else `default_level`), `format` writes.
pub fn init_logging(format: LogFormat, default_level: &str) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level));
    match format {
        LogFormat::Text => builder.format(|buf, record| {
            write!(
                buf,
                "{} {:<5} {}: {}",
                timestamp(),
                record.level(),
                record.target(),
                record.args()
            )?;
            let mut fields = Fields::default();
            let _ = record.key_values().visit(&mut fields);
            for (key, value) in fields.0 {
                match value {
                    serde_json::Value::String(s) if !s.contains([' ', '"', '=']) => {
                        write!(buf, " {key}={s}")?
                    }
                    other => write!(buf, " {key}={other}")?,
                }
            }
            writeln!(buf)
        }),
        LogFormat::Json => builder.format(|buf, record| writeln!(buf, "{}", json_line(record))),
    };
    builder.init();
}

/// A record as one JSON object. Fields of the record never replace the four fixed ones.
fn json_line(record: &log::Record<'_>) -> String {
    let mut object = serde_json::Map::new();
    object.insert("ts".into(), timestamp().into());
    object.insert(
        "level".into(),
        record.level().as_str().to_ascii_lowercase().into(),
    );
    object.insert("target".into(), record.target().into());
    object.insert("msg".into(), record.args().to_string().into());
    let mut fields = Fields::default();
    let _ = record.key_values().visit(&mut fields);
    for (key, value) in fields.0 {
        object.entry(key).or_insert(value);
    }
    serde_json::Value::Object(object).to_string()
}

fn timestamp() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// A record's key-value fields, in order, as JSON values.
#[derive(Default)]
struct Fields(Vec<(String, serde_json::Value)>);

impl<'kvs> log::kv::VisitSource<'kvs> for Fields {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        let json = if let Some(b) = value.to_bool() {
            b.into()
        } else if let Some(n) = value.to_u64() {
            n.into()
        } else if let Some(n) = value.to_i64() {
            n.into()
        } else {
            value.to_string().into()
        };
        self.0.push((key.as_str().to_owned(), json));
        Ok(())
    }
}

/// Who runs this process, as the `actor` of an admin action done through the CLI: the login
/// name of the real user ID (from the password database), and the sudo caller when there is
/// one. Falls back to `uid N` when the ID has no name.
pub fn os_user() -> String {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let name = user_name(uid).unwrap_or_else(|| format!("uid {uid}"));
    match std::env::var("SUDO_USER") {
        Ok(sudo) if !sudo.is_empty() && sudo != name => format!("{name} (sudo by {sudo})"),
        _ => name,
    }
}

/// The name of a user ID, from the system's password database. getpwuid_r is the reentrant
/// lookup; no crate is needed for one call.
fn user_name(uid: libc::uid_t) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: an all-zero passwd is a valid value to be filled in.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to memory we own and that outlives the call; getpwuid_r writes
    // strings only into `buf` and sets `found` to `&pwd` or null.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name points into `buf`, NUL-terminated by getpwuid_r.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_os_user_is_named() {
        let user = os_user();
        assert!(!user.is_empty());
        // SAFETY: getuid cannot fail.
        if unsafe { libc::getuid() } == 0 {
            assert!(user.starts_with("root"), "{user}");
        }
    }

    #[test]
    fn json_lines_hold_the_fixed_fields_and_the_record_fields() {
        let kvs: &[(&str, &str)] = &[("event", "login"), ("user", "alice"), ("msg", "spoof")];
        let line = json_line(
            &log::Record::builder()
                .args(format_args!("login succeeded"))
                .level(log::Level::Info)
                .target(SECURITY)
                .key_values(&kvs)
                .build(),
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "info");
        assert_eq!(v["target"], SECURITY);
        assert_eq!(v["msg"], "login succeeded");
        assert_eq!(v["event"], "login");
        assert_eq!(v["user"], "alice");
        assert!(v["ts"].as_str().unwrap().ends_with('Z'));
    }
}
