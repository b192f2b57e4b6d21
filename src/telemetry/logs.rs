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
        LogFormat::Text => builder.format(|buf, record| writeln!(buf, "{}", text_line(record))),
        LogFormat::Json => builder.format(|buf, record| writeln!(buf, "{}", json_line(record))),
    };
    builder.init();
}

/// True for what a log viewer would act on rather than show: control characters (a new line
/// forges a record), line and paragraph separators (JavaScript and many viewers break lines on
/// them), bidirectional controls (they reorder what is shown) and zero-width characters (they
/// hide what is there). Client-typed text reaches the log (client types, names, user IDs).
fn unsafe_in_log(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Text with every character [`unsafe_in_log`] written as `\u{XXXX}`.
fn escape_text(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(unsafe_in_log) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_in_log(c) {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// A record as one line of text: `ts level target: message key=value …`, every unsafe
/// character escaped, values with a space, quote or `=` quoted as JSON strings.
fn text_line(record: &log::Record<'_>) -> String {
    use std::fmt::Write as _;
    let mut line = format!(
        "{} {:<5} {}: {}",
        timestamp(),
        record.level(),
        record.target(),
        escape_text(&record.args().to_string())
    );
    let mut fields = Fields::default();
    let _ = record.key_values().visit(&mut fields);
    for (key, value) in fields.0 {
        let key = escape_text(&key);
        let _ = match value {
            serde_json::Value::String(s) if !s.contains([' ', '"', '=']) => {
                write!(line, " {key}={}", escape_text(&s))
            }
            other => write!(line, " {key}={}", json_escaped(other.to_string())),
        };
    }
    line
}

/// JSON text with the characters serde_json leaves raw but [`unsafe_in_log`] names (the
/// separators, bidi and zero-width characters) written as `\uXXXX` escapes: the same string to
/// a JSON reader, inert to a viewer. They can only occur inside strings, where the escape is
/// valid.
fn json_escaped(json: String) -> String {
    if !json.chars().any(unsafe_in_log) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if unsafe_in_log(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
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
    json_escaped(serde_json::Value::Object(object).to_string())
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

    const HOSTILE: &str = "a\u{2028}b\u{2029}c\u{202E}d\u{200B}e\u{2066}f\u{feff}g\nh\u{85}i";

    fn hostile_record(then: impl FnOnce(&log::Record<'_>) -> String) -> String {
        let kvs: &[(&str, &str)] = &[("client_type", HOSTILE), ("user", "a b\u{2028}")];
        then(
            &log::Record::builder()
                .args(format_args!("login of {HOSTILE}"))
                .level(log::Level::Info)
                .target(SECURITY)
                .key_values(&kvs)
                .build(),
        )
    }

    #[test]
    fn separators_bidi_and_zero_width_characters_are_escaped_in_text_lines() {
        let line = hostile_record(text_line);
        assert!(!line.chars().any(unsafe_in_log), "{line:?}");
        assert!(
            line.contains("a\\u{2028}b\\u{2029}c\\u{202e}d\\u{200b}e"),
            "{line}"
        );
        assert!(line.contains("\\u{a}h"), "{line}");
    }

    #[test]
    fn separators_bidi_and_zero_width_characters_are_escaped_in_json_lines() {
        let line = hostile_record(json_line);
        assert!(!line.chars().any(unsafe_in_log), "{line:?}");
        assert!(line.contains("\\u2028"), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        // A JSON reader still gets the client's text exactly.
        assert_eq!(v["client_type"], HOSTILE);
        assert_eq!(v["msg"], format!("login of {HOSTILE}"));
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
