//! Property tests of the two pure entries the fuzz targets drive (`fuzz/`, docs/reliability.md):
//! the request decoder and the config loader. They run in every `cargo test`, where the fuzzers
//! cannot (a CI fuzz step costs minutes of sanitizer build); no server is needed, since what is
//! checked is exactly what the server would send or start with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use sessiond::config::{Config, ConfigError};
use sessiond::soap::{decode, Limits, SoapVersion};

/// The fuzz target's bound: a fault echoes at most an excerpt, whatever the request's size.
const MAX_FAULT_LEN: usize = 4096;

/// The decode seeds: every operation in both SOAP versions (fuzz/seeds.py writes them).
fn seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let body = std::fs::read(&path).unwrap();
            (path, body)
        })
        .collect();
    // Sorted, so a failing case replays on every machine.
    seeds.sort();
    seeds.into_iter().map(|(_, body)| body).collect()
}

/// Bytes a hostile or broken client might put anywhere.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 1..8),
        prop::sample::select(vec![
            &b"<"[..],
            b">",
            b"&",
            b"\"",
            b"\0",
            b"\x01",
            b"]]>",
            b"<!DOCTYPE x [<!ENTITY e \"e\">]>",
            b"&#1;",
            b"&#x10FFFF;",
            b"&e;",
            b" a=\"1\" a=\"2\"",
            b" xmlns:p=\"urn:p\" p:a=\"1\"",
            b"<![CDATA[x]]>",
            b"<?xml version=\"1.0\"?>",
            b"</x>",
            b"\xEF\xBF\xBF",
            b"\xFF\xFE",
            b"\xC3",
        ])
        .prop_map(<[u8]>::to_vec),
    ]
}

/// One change to a seed, at a place given as a fraction of its length.
#[derive(Debug, Clone)]
enum Edit {
    Insert(f64, Vec<u8>),
    Delete(f64, usize),
    Truncate(f64),
    /// A long run of one byte: the 900 KB element name, or a long value.
    Repeat(f64, u8, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (0.0..1.0, fragment()).prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        2 => (0.0..1.0, 1usize..32).prop_map(|(at, n)| Edit::Delete(at, n)),
        1 => (0.0..1.0).prop_map(Edit::Truncate),
        1 => (0.0..1.0, prop::sample::select(vec![b'n', b' ', b'<', b'\0']), 1usize..20_000)
            .prop_map(|(at, b, n)| Edit::Repeat(at, b, n)),
    ]
}

fn apply(mut body: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let at = |f: f64| ((body.len() as f64) * f) as usize;
        match e {
            Edit::Insert(f, bytes) => {
                let i = at(*f);
                body.splice(i..i, bytes.iter().copied());
            }
            Edit::Delete(f, n) => {
                let i = at(*f);
                let end = (i + n).min(body.len());
                body.drain(i..end);
            }
            Edit::Truncate(f) => body.truncate(at(*f)),
            Edit::Repeat(f, b, n) => {
                let i = at(*f);
                body.splice(i..i, std::iter::repeat_n(*b, *n));
            }
        }
    }
    body
}

/// What the server would send for this body: a request, or a fault that is well-formed XML
/// of bounded size in both versions.
fn check_decode(body: &[u8]) -> Result<(), TestCaseError> {
    if let Err(rejected) = decode(body, SoapVersion::V11, Limits::default()) {
        for version in [SoapVersion::V11, SoapVersion::V12] {
            let xml = rejected.fault.encode(version);
            prop_assert!(xml.len() <= MAX_FAULT_LEN, "a fault of {} bytes", xml.len());
            if let Err(e) = roxmltree::Document::parse(&xml) {
                return Err(TestCaseError::fail(format!("fault not XML ({e}): {xml:?}")));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_mangled_request_decodes_or_gets_a_small_well_formed_fault(
        seed in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let seeds = seeds();
        let body = apply(seeds[seed.index(seeds.len())].clone(), &edits);
        check_decode(&body)?;
    }

    #[test]
    fn arbitrary_bytes_get_a_small_well_formed_fault(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        check_decode(&body)?;
    }
}

/// The settings file's keys, from the config table itself; a few misspelt ones are mixed in.
fn keys() -> Vec<&'static str> {
    let mut keys: Vec<&'static str> = sessiond::config::SETTINGS.iter().map(|s| s.key).collect();
    keys.extend(["sesion_timeout", ""]);
    keys
}

/// A TOML value as a settings file might hold it, right or wrong.
fn toml_value() -> impl Strategy<Value = String> {
    let text = prop_oneof![
        "[0-9]{1,6}(ms|s|m|h|d)?",
        "off|none|0|-1|1e9|1 m 2s",
        "(sqlite|postgres)://[a-z@:/.0-9]{0,20}",
        "/[a-zA-Z/?# ]{0,12}",
        "[0-9.:]{0,20}",
        "\\PC{0,16}",
    ];
    prop_oneof![
        text.clone().prop_map(|s| format!("{:?}", s)),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        proptest::collection::vec(text, 0..3).prop_map(|v| format!("{v:?}")),
        Just("1.5".to_owned()),
        Just("{ a = 1 }".to_owned()),
    ]
}

/// The loader's pure entry, as the fuzz target calls it.
fn load(text: &str, env: &HashMap<String, String>) -> Option<Result<Config, ConfigError>> {
    Some(Config::from_sources(
        Some((Path::new("fuzz.toml"), text)),
        env,
    ))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_settings_give_a_config_within_its_ranges_or_an_error_naming_where(
        file in proptest::collection::vec((prop::sample::select(keys()), toml_value()), 0..8),
        env in proptest::collection::vec(
            (prop::sample::select(keys()), "\\PC{0,16}|[0-9]{1,4}(s|m)?"), 0..4),
    ) {
        let mut seen = std::collections::HashSet::new();
        let text: String = file
            .iter()
            .filter(|(k, _)| seen.insert(*k))
            .map(|(k, v)| format!("{k:?} = {v}\n"))
            .collect();
        let env: HashMap<String, String> = env
            .into_iter()
            .map(|(k, v)| (sessiond::config::env_name(k), v))
            .collect();
        match load(&text, &env) {
            None => {}
            Some(Ok(c)) => {
                prop_assert!(c.max_body_size >= 1 && c.list_page_size >= 1);
                prop_assert!(c.db_pool_size >= 1 && c.hash_concurrency >= 1 && c.workers >= 1);
                prop_assert!(!c.session_timeout.is_zero());
                prop_assert!(c.activity_lag <= c.session_timeout / 10);
                prop_assert!(c.endpoint_paths().all(|p| p.starts_with('/')));
            }
            Some(Err(e)) => {
                let said = e.to_string();
                prop_assert!(
                    said.contains("fuzz.toml") || said.contains("SESSIOND_") || said.contains("DATABASE_URL"),
                    "an error that names no setting: {}", said
                );
            }
        }
    }
}
