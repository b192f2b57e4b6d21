//! The configuration loader over arbitrary TOML text and environment: it must answer a config
//! or a `ConfigError`, never panic, and a config it answers must hold SPEC 6's ranges.
//!
//! Input: the TOML file's text, then optionally a NUL byte and `NAME=value` lines taken as the
//! environment (so the seeds can exercise both sources and their precedence).

#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use sessiond::config::{Config, ConfigError};

/// The loader's pure entry: the file's text and an environment, no I/O.
fn load(text: &str, env: &HashMap<String, String>) -> Option<Result<Config, ConfigError>> {
    Some(Config::from_sources(
        Some((std::path::Path::new("fuzz.toml"), text)),
        env,
    ))
}

fuzz_target!(|data: &[u8]| {
    let Ok(data) = std::str::from_utf8(data) else {
        return;
    };
    let (text, env_text) = data.split_once('\0').unwrap_or((data, ""));
    let env: HashMap<String, String> = env_text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    if let Some(Ok(config)) = load(text, &env) {
        assert!(config.max_body_size >= 1);
        assert!(config.list_page_size >= 1);
        assert!(config.db_pool_size >= 1);
        assert!(config.hash_concurrency >= 1);
        assert!(config.workers >= 1);
        assert!(!config.session_timeout.is_zero());
        assert!(config.activity_lag <= config.session_timeout / 10);
        assert!(config.endpoint_paths().all(|p| p.starts_with('/')));
    }
});
