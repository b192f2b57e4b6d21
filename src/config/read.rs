//! How each setting is read: the types serde reads a value into ([`Text`], [`Number`], [`Dur`],
//! [`OptionalDur`], [`List`]), their range checks, and what each row's `then` makes of them.
//! Each reader takes a string (which is all the environment has) and, in the file, the value's
//! natural TOML type too.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::domain::{DatabaseUrl, LimitPolicy, ListedIds, LogFormat};

/// A setting with a range: checks the value read against the row's bounds.
pub(super) trait Bounded {
    fn within(&self, lo: &str, hi: &str) -> Result<(), String>;
}

fn out_of_range(value: &str, lo: &str, hi: &str) -> String {
    format!("{value} is out of range ({lo} to {hi})")
}

/// Free text.
#[derive(Debug)]
pub(super) struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Text)
    }
}

/// A whole number.
#[derive(Debug)]
pub(super) struct Number(u64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Number;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Number, E> {
                Ok(Number(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Number, E> {
                u64::try_from(n)
                    .map(Number)
                    .map_err(|_| E::custom(format!("{n} is not a whole number of zero or more")))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Number, E> {
                s.trim()
                    .parse()
                    .map(Number)
                    .map_err(|_| E::custom(format!("'{s}' is not a whole number")))
            }
        }
        d.deserialize_any(V)
    }
}

impl Bounded for Number {
    fn within(&self, lo: &str, hi: &str) -> Result<(), String> {
        let bound = |b: &str| b.parse::<u64>().expect("a range in config_settings!");
        if self.0 < bound(lo) || self.0 > bound(hi) {
            return Err(out_of_range(&self.0.to_string(), lo, hi));
        }
        Ok(())
    }
}

/// A duration like `90s` or `30m`.
#[derive(Debug)]
pub(super) struct Dur {
    value: Duration,
    text: String,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => format!("'{s}' is too long a duration"),
        _ => format!("'{s}' is not a duration like 30m or 90s"),
    })
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration like 30m or 90s")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                parse_duration(s)
                    .map(|value| Dur {
                        value,
                        text: s.trim().to_owned(),
                    })
                    .map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl Bounded for Dur {
    fn within(&self, lo: &str, hi: &str) -> Result<(), String> {
        let bound = |b: &str| parse_duration(b).expect("a range in config_settings!");
        if self.value < bound(lo) || self.value > bound(hi) {
            return Err(out_of_range(&self.text, lo, hi));
        }
        Ok(())
    }
}

/// A duration, or `off` (also `none`, `0` or empty) for none.
#[derive(Debug)]
pub(super) struct OptionalDur(Option<Dur>);

impl<'de> Deserialize<'de> for OptionalDur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.trim() {
            "off" | "none" | "0" | "" => Ok(OptionalDur(None)),
            _ => Dur::deserialize(de::value::StrDeserializer::<D::Error>::new(&text))
                .map(|d| OptionalDur(Some(d))),
        }
    }
}

impl Bounded for OptionalDur {
    fn within(&self, lo: &str, hi: &str) -> Result<(), String> {
        self.0.as_ref().map_or(Ok(()), |d| d.within(lo, hi))
    }
}

/// A whole number, or `off` (also `none` or empty) for none.
#[derive(Debug)]
pub(super) struct OptionalNumber(Option<Number>);

impl<'de> Deserialize<'de> for OptionalNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a whole number or off")]
        enum Either {
            Number(u64),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(OptionalNumber(Some(Number(n)))),
            Either::Text(s) => match s.trim() {
                "off" | "none" | "" => Ok(OptionalNumber(None)),
                _ => Number::deserialize(de::value::StrDeserializer::<D::Error>::new(&s))
                    .map(|n| OptionalNumber(Some(n))),
            },
        }
    }
}

impl Bounded for OptionalNumber {
    fn within(&self, lo: &str, hi: &str) -> Result<(), String> {
        self.0.as_ref().map_or(Ok(()), |n| n.within(lo, hi))
    }
}

/// A list: comma-separated text, or in the file an array of strings.
#[derive(Debug)]
pub(super) struct List(Vec<String>);

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a comma-separated list or an array of strings")]
        enum Either {
            Text(String),
            Items(Vec<String>),
        }
        let items: Vec<String> = match Either::deserialize(d)? {
            Either::Text(s) => s.split(',').map(|p| p.trim().to_owned()).collect(),
            Either::Items(items) => items.into_iter().map(|p| p.trim().to_owned()).collect(),
        };
        Ok(List(
            items
                .into_iter()
                .filter(|p: &String| !p.is_empty())
                .collect(),
        ))
    }
}

/// A list of words: space-separated text, or in the file an array of strings.
#[derive(Debug)]
pub(super) struct Words(Vec<String>);

impl<'de> Deserialize<'de> for Words {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a space-separated list or an array of strings")]
        enum Either {
            Text(String),
            Items(Vec<String>),
        }
        let items: Vec<String> = match Either::deserialize(d)? {
            Either::Text(s) => s.split_whitespace().map(str::to_owned).collect(),
            Either::Items(items) => items.into_iter().map(|p| p.trim().to_owned()).collect(),
        };
        Ok(Words(
            items
                .into_iter()
                .filter(|p: &String| !p.is_empty())
                .collect(),
        ))
    }
}

/// Distinguished names: separated by `;` (a DN has commas of its own), or in the file an array.
#[derive(Debug)]
pub(super) struct Dns(Vec<String>);

impl<'de> Deserialize<'de> for Dns {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "DNs separated by ; or an array of strings")]
        enum Either {
            Text(String),
            Items(Vec<String>),
        }
        let items: Vec<String> = match Either::deserialize(d)? {
            Either::Text(s) => s.split(';').map(|p| p.trim().to_owned()).collect(),
            Either::Items(items) => items.into_iter().map(|p| p.trim().to_owned()).collect(),
        };
        Ok(Dns(items
            .into_iter()
            .filter(|p: &String| !p.is_empty())
            .collect()))
    }
}

/// `true` or `false` (also `yes`/`no`, `on`/`off`, `1`/`0`), or in the file a boolean.
#[derive(Debug)]
pub(super) struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "true or false")]
        enum Either {
            Bool(bool),
            Text(String),
        }
        match Either::deserialize(d)? {
            Either::Bool(b) => Ok(Flag(b)),
            Either::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(Flag(true)),
                "false" | "no" | "off" | "0" | "" => Ok(Flag(false)),
                _ => Err(de::Error::custom(format!("'{s}' is not true or false"))),
            },
        }
    }
}

// What each row's `then` makes of the value read.

pub(super) fn flag(f: Flag) -> Result<bool, String> {
    Ok(f.0)
}

/// Text, or `none` (or empty) for none.
pub(super) fn optional_text(t: Text) -> Result<Option<String>, String> {
    let s = t.0.trim();
    Ok((!s.is_empty() && s != "none").then(|| s.to_owned()))
}

/// A file path, or `none` (or empty) for none.
pub(super) fn optional_file_or_none(t: Text) -> Result<Option<PathBuf>, String> {
    Ok(optional_text(t)?.map(PathBuf::from))
}

pub(super) fn ldap_urls(w: Words) -> Result<Vec<String>, String> {
    for u in &w.0 {
        let lower = u.to_ascii_lowercase();
        if !(lower.starts_with("ldap://") || lower.starts_with("ldaps://")) {
            return Err(format!("'{u}' is not an ldap:// or ldaps:// URL"));
        }
        url::Url::parse(u).map_err(|e| format!("'{u}' is not a URL: {e}"))?;
    }
    Ok(w.0)
}

pub(super) fn user_filter(t: Text) -> Result<String, String> {
    let s = t.0.trim();
    if !s.contains("{user}") || !s.starts_with('(') || !s.ends_with(')') {
        return Err(format!(
            "'{s}' is not a filter in parentheses holding {{user}}, like (uid={{user}})"
        ));
    }
    Ok(s.to_owned())
}

pub(super) fn dns(d: Dns) -> Result<Vec<String>, String> {
    for dn in &d.0 {
        if !dn.contains('=') {
            return Err(format!(
                "'{dn}' is not a DN like cn=admins,ou=groups,dc=example,dc=org"
            ));
        }
    }
    Ok(d.0)
}

pub(super) fn database_url(t: Text) -> Result<DatabaseUrl, String> {
    DatabaseUrl::parse(&t.0)
}

pub(super) fn bind_address(t: Text) -> Result<SocketAddr, String> {
    let s = t.0.trim();
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    s.to_socket_addrs()
        .map_err(|_| format!("'{s}' is not address:port (like 127.0.0.1:8080)"))?
        .next()
        .ok_or_else(|| format!("'{s}' resolves to no address"))
}

pub(super) fn optional_bind_address(t: Text) -> Result<Option<SocketAddr>, String> {
    bind_address(t).map(Some)
}

pub(super) fn log_format(t: Text) -> Result<LogFormat, String> {
    LogFormat::parse(&t.0)
}

pub(super) fn duration(d: Dur) -> Result<Duration, String> {
    Ok(d.value)
}

pub(super) fn optional_duration(d: OptionalDur) -> Result<Option<Duration>, String> {
    Ok(d.0.map(|d| d.value))
}

pub(super) fn number<T: TryFrom<u64>>(n: Number) -> Result<T, String> {
    T::try_from(n.0).map_err(|_| format!("{} is too large", n.0))
}

pub(super) fn optional_number<T: TryFrom<u64>>(n: OptionalNumber) -> Result<Option<T>, String> {
    n.0.map(number).transpose()
}

pub(super) fn limit_policy(t: Text) -> Result<LimitPolicy, String> {
    t.0.parse()
        .map_err(|e: crate::domain::DomainError| e.to_string())
}

pub(super) fn listed_ids(t: Text) -> Result<ListedIds, String> {
    t.0.parse()
        .map_err(|e: crate::domain::DomainError| e.to_string())
}

pub(super) fn name(t: Text) -> Result<String, String> {
    let s = t.0.trim();
    if s.is_empty() || s.chars().count() > 64 || s.chars().any(char::is_control) {
        return Err("must be 1 to 64 printable characters".into());
    }
    Ok(s.to_owned())
}

pub(super) fn public_url(t: Text) -> Result<Option<String>, String> {
    let s = t.0.trim().trim_end_matches('/');
    if !(s.starts_with("http://") || s.starts_with("https://")) || s.contains(char::is_whitespace) {
        return Err(format!("'{s}' is not an http:// or https:// URL"));
    }
    Ok(Some(s.to_owned()))
}

fn one_path(s: &str) -> Result<String, String> {
    let s = s.trim();
    if !s.starts_with('/') || s.contains(['?', '#', ' ']) {
        return Err(format!("'{s}' is not a URL path starting with /"));
    }
    Ok(s.to_owned())
}

pub(super) fn url_path(t: Text) -> Result<String, String> {
    one_path(&t.0)
}

/// `off`, or a path; a trailing `/` is added, since the console's pages live below it.
pub(super) fn console_path(t: Text) -> Result<Option<String>, String> {
    if t.0.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let path = one_path(&t.0)?;
    Ok(Some(if path.ends_with('/') {
        path
    } else {
        format!("{path}/")
    }))
}

pub(super) fn url_paths(l: List) -> Result<Vec<String>, String> {
    l.0.iter().map(|p| one_path(p)).collect()
}

pub(super) fn file_path(t: Text) -> Result<PathBuf, String> {
    if t.0.trim().is_empty() {
        return Err("must be a file path".into());
    }
    Ok(PathBuf::from(t.0))
}

pub(super) fn optional_file_path(t: Text) -> Result<Option<PathBuf>, String> {
    file_path(t).map(Some)
}

pub(super) fn ip_addresses(l: List) -> Result<Vec<IpAddr>, String> {
    l.0.iter()
        .map(|p| {
            p.parse::<IpAddr>()
                .map_err(|_| format!("'{p}' is not an IP address"))
        })
        .collect()
}
