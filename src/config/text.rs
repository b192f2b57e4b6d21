//! The settings as text: `--help`, the example file (`sessiond config example` and the
//! Debian package's), and values as `config check` shows them (secrets masked, durations in
//! the largest unit).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::{Config, Setting, CONFIG_FILE_VAR, SETTINGS};

/// The settings for `--help`: every variable, its default, its range and what it means.
pub fn help() -> String {
    let mut rows = vec![
        (
            CONFIG_FILE_VAR.to_owned(),
            "the TOML file, as --config [default: ./sessiond.toml if present]".to_owned(),
        ),
        (
            "RUST_LOG".to_owned(),
            "log filter, like warn or sessiond=debug [default: info for serve, else warn with security events]"
                .to_owned(),
        ),
    ];
    for s in SETTINGS {
        let range = s
            .range
            .map(|(lo, hi)| format!(" [{lo} to {hi}]"))
            .unwrap_or_default();
        rows.push((
            s.env.to_owned(),
            format!("{} [default: {}]{range}", s.meaning.trim(), s.default),
        ));
    }
    let width = rows.iter().map(|(env, _)| env.len()).max().unwrap_or(0);
    let mut text = String::from(
        "Settings, from the environment (which wins) or the TOML file (the same names in lower \
         case without SESSIOND_).\nDurations are written like 90s, 30m, 2h or 30d.\n",
    );
    for (env, meaning) in rows {
        text.push_str(&format!("  {env:<width$}  {meaning}\n"));
    }
    text
}

/// A value as a TOML file writes it: a number bare where the setting is numeric, else a string.
fn toml_literal(s: &Setting, value: &str) -> String {
    match value.parse::<u64>() {
        Ok(n) if s.range.is_some_and(|(lo, _)| lo.parse::<u64>().is_ok()) => n.to_string(),
        _ => toml::Value::String(value.to_owned()).to_string(),
    }
}

/// Whether a setting's default, as shown, is words ("host name", "cores") rather than a value
/// that reads back as the default.
pub(super) fn in_words(s: &Setting) -> bool {
    let line = format!("{} = {}", s.key, toml_literal(s, s.default));
    let read = Config::from_sources(Some((Path::new("default"), &line)), &HashMap::new());
    !read.is_ok_and(|c| format!("{c:?}") == format!("{:?}", Config::default()))
}

/// A TOML file with every setting, each commented out at its default with its meaning, its
/// variable and its range: `sessiond config example`, and (with the package's paths as
/// `overrides`, set rather than commented) the Debian package's `/etc/sessiond/sessiond.toml`.
pub fn example(header: &str, overrides: &[(&str, &str)]) -> String {
    let mut text = String::from(header);
    for s in SETTINGS {
        text.push('\n');
        text.push_str(&format!("# {}\n", s.meaning.trim()));
        let range = s
            .range
            .map(|(lo, hi)| format!(", {lo} to {hi}"))
            .unwrap_or_default();
        text.push_str(&format!("# {}; default: {}{range}\n", s.env, s.default));
        if let Some((_, value)) = overrides.iter().find(|(key, _)| *key == s.key) {
            text.push_str(&format!("{} = {}\n", s.key, toml_literal(s, value)));
            continue;
        }
        // The default as a value where it is one (`30m`, `8`), else in words (`host name`).
        if in_words(s) {
            text.push_str(&format!("#{} = ...  ({})\n", s.key, s.default));
        } else {
            text.push_str(&format!("#{} = {}\n", s.key, toml_literal(s, s.default)));
        }
    }
    text
}

/// A value as given, on one line: a string without quotes, a list as `a, b`.
pub(super) fn show_value(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items.iter().map(show_value).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Whether a setting holds a secret by its name: a password or a secret itself, not the path
/// of a file holding one (`admin_password_file`) nor a rule about one (`password_min_length`).
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    (key.contains("password") || key.contains("secret"))
        && !key.ends_with("_file")
        && !key.ends_with("_length")
}

/// A value as `config check` may print it: a secret setting wholly hidden, and in any URL the
/// password and any `password` parameter hidden (the database URL's).
pub fn mask(key: &str, value: &str) -> String {
    const HIDDEN: &str = "********";
    if is_secret(key) {
        return if value.is_empty() {
            String::new()
        } else {
            HIDDEN.to_owned()
        };
    }
    let Ok(mut url) = url::Url::parse(value) else {
        return value.to_owned();
    };
    let secret_query = url.query_pairs().any(|(k, _)| is_secret(&k));
    if !value.contains("://") || (url.password().is_none() && !secret_query) {
        // Shown as given, not as the URL parser would write it back.
        return value.to_owned();
    }
    if url.password().is_some() {
        let _ = url.set_password(Some(HIDDEN));
    }
    if secret_query {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret(&k) {
                    HIDDEN.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// A duration as a setting would write it: the largest unit that divides it, `1500ms`, `90s`,
/// `30m`, `365d`. humantime's own formatting splits a year into months and hours.
pub(super) fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if d.subsec_nanos() % 1_000_000 != 0 {
        return humantime::format_duration(d).to_string();
    }
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}
