//! The settings read from files and environments as `from_sources` sees them.

use super::*;
use crate::domain::Backend;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn from_env(pairs: &[(&str, &str)]) -> Result<Config, String> {
    Config::from_sources(None, &env(pairs)).map_err(|e| e.to_string())
}

fn from_file(text: &str, pairs: &[(&str, &str)]) -> Result<Config, String> {
    Config::from_sources(Some((Path::new("s.toml"), text)), &env(pairs)).map_err(|e| e.to_string())
}

#[test]
fn defaults_apply_without_any_source() {
    let c = from_env(&[]).unwrap();
    assert_eq!(c.bind.to_string(), DEFAULT_BIND);
    assert_eq!(c.session_timeout, DEFAULT_SESSION_TIMEOUT);
    assert_eq!(c.login_wait, Duration::from_secs(5));
    assert_eq!(c.database.backend, Backend::Sqlite);
    assert_eq!(c.database.target, "sessiond.db");
    assert!(c.notices.is_empty(), "{:?}", c.notices);
}

#[test]
fn the_file_and_the_environment_are_merged_and_the_environment_wins() {
    let c = from_file(
        "session_timeout = \"10m\"\nlocation = \"file\"\nworkers = 3\n",
        &[
            ("SESSIOND_SESSION_TIMEOUT", "90s"),
            ("SESSIOND_DB_POOL_SIZE", "4"),
        ],
    )
    .unwrap();
    assert_eq!(c.session_timeout, Duration::from_secs(90));
    assert_eq!(c.location, "file");
    assert_eq!(c.workers, 3);
    assert_eq!(c.db_pool_size, 4);
}

#[test]
fn lists_are_read_from_commas_or_a_toml_array() {
    let c = from_env(&[
        ("SESSIOND_TRUSTED_PROXIES", "10.0.0.1, ::1,"),
        ("SESSIOND_ENDPOINT_ALIASES", "/a,/b"),
    ])
    .unwrap();
    assert_eq!(c.trusted_proxies.len(), 2);
    assert_eq!(c.endpoint_aliases, ["/a", "/b"]);
    let c = from_file("endpoint_aliases = [\"/x\", \"/y\"]", &[]).unwrap();
    assert_eq!(c.endpoint_aliases, ["/x", "/y"]);
}

#[test]
fn off_turns_an_optional_duration_off() {
    let c = from_file(
        "sweep_interval = \"5m\"",
        &[("SESSIOND_SWEEP_INTERVAL", "off")],
    )
    .unwrap();
    assert_eq!(c.sweep_interval, None);
    let c = from_env(&[("SESSIOND_SESSION_MAX_LIFETIME", "8h")]).unwrap();
    assert_eq!(c.session_max_lifetime, Some(Duration::from_secs(8 * 3600)));
}

#[test]
fn a_value_that_is_not_a_duration_says_so_naming_the_variable() {
    let err = from_env(&[("SESSIOND_SESSION_TIMEOUT", "abc")]).unwrap_err();
    assert_eq!(
        err,
        "SESSIOND_SESSION_TIMEOUT: 'abc' is not a duration like 30m or 90s"
    );
}

#[test]
fn a_bad_database_url_names_database_url() {
    let err = from_env(&[("DATABASE_URL", "mysql://x")]).unwrap_err();
    assert!(
        err.starts_with("DATABASE_URL: unsupported scheme 'mysql'"),
        "{err}"
    );
}

#[test]
fn a_value_that_is_not_a_number_says_so_naming_the_variable() {
    let err = from_env(&[("SESSIOND_WORKERS", "many")]).unwrap_err();
    assert_eq!(err, "SESSIOND_WORKERS: 'many' is not a whole number");
    let err = from_file("workers = -2", &[]).unwrap_err();
    assert_eq!(
        err,
        "workers in s.toml: -2 is not a whole number of zero or more"
    );
}

#[test]
fn a_value_out_of_its_range_names_the_setting_and_the_range() {
    let err = from_env(&[("SESSIOND_SESSION_TIMEOUT", "1000000y")]).unwrap_err();
    assert_eq!(
        err,
        "SESSIOND_SESSION_TIMEOUT: 1000000y is out of range (1s to 365d)"
    );
    let err = from_env(&[("SESSIOND_DB_POOL_SIZE", "0")]).unwrap_err();
    assert_eq!(err, "SESSIOND_DB_POOL_SIZE: 0 is out of range (1 to 1000)");
    let err = from_file("workers = 5000", &[]).unwrap_err();
    assert_eq!(err, "workers in s.toml: 5000 is out of range (1 to 1024)");
    let err = from_env(&[("SESSIOND_SWEEP_INTERVAL", "30d")]).unwrap_err();
    assert_eq!(
        err,
        "SESSIOND_SWEEP_INTERVAL: 30d is out of range (1s to 7d)"
    );
    let err = from_env(&[("SESSIOND_SESSION_TIMEOUT", "99999999999999999999y")]).unwrap_err();
    assert!(err.starts_with("SESSIOND_SESSION_TIMEOUT: "), "{err}");
}

#[test]
fn the_bounds_of_a_range_are_allowed() {
    let c = from_env(&[
        ("SESSIOND_SESSION_TIMEOUT", "365d"),
        ("SESSIOND_WORKERS", "1024"),
        ("SESSIOND_LOCKOUT_THRESHOLD", "0"),
    ])
    .unwrap();
    assert_eq!(c.session_timeout, Duration::from_secs(365 * 86400));
    assert_eq!((c.workers, c.lockout_threshold), (1024, 0));
}

#[test]
fn a_bad_file_value_names_the_key_and_file() {
    let err = from_file("bind = \"nowhere\"", &[]).unwrap_err();
    assert!(
        err.starts_with("bind in s.toml: 'nowhere' is not address:port"),
        "{err}"
    );
    let err = from_file("session_timeout = 90", &[]).unwrap_err();
    assert!(err.starts_with("session_timeout in s.toml: "), "{err}");
    assert!(err.contains("a duration like 30m or 90s"), "{err}");
}

#[test]
fn a_bad_environment_value_is_named_by_its_variable_even_when_the_file_sets_it_too() {
    let err = from_file("location = \"ok\"", &[("SESSIOND_LOCATION", " ")]).unwrap_err();
    assert!(err.starts_with("SESSIOND_LOCATION: "), "{err}");
}

#[test]
fn an_unknown_file_key_stops_the_start_naming_it_and_the_file() {
    let err = from_file("sesion_timeout = \"1m\"", &[]).unwrap_err();
    assert_eq!(
        err,
        "sesion_timeout in s.toml: not a setting (did you mean session_timeout?)"
    );
    let err = from_file("colour = \"blue\"", &[]).unwrap_err();
    assert_eq!(
        err,
        "colour in s.toml: not a setting (sessiond --help lists them)"
    );
}

#[test]
fn an_unknown_variable_is_not_a_setting_and_is_ignored() {
    assert!(from_env(&[("SESSIOND_SESION_TIMEOUT", "soon"), ("HOME", "/")]).is_ok());
}

#[test]
fn a_file_that_is_not_toml_names_the_file_and_the_line() {
    let err = from_file("bind = \"127.0.0.1:1\"\nthis is not toml\n", &[]).unwrap_err();
    assert!(err.starts_with("config file s.toml: "), "{err}");
    assert!(err.contains("(line 2)"), "{err}");
}

#[test]
fn odd_files_and_values_give_errors_not_panics() {
    let files = [
        "é = ",
        "\u{0}",
        "[bind]\nx = 1",
        "workers = 1.5",
        "endpoint_aliases = [1, {a = 2}]",
        "sweep_interval = 0",
        "database_url = []",
        "session_timeout = \"18446744073709551616s\"",
        "max_body_size = 18446744073709551615",
        "trusted_proxies = \"::1, nope\"",
    ];
    for text in files {
        assert!(from_file(text, &[]).is_err(), "{text:?} was accepted");
    }
    let values = [
        "",
        " ",
        "-1",
        "1e9",
        "999999999999999999999",
        "1s 2",
        "off",
        "\u{7f}",
    ];
    for s in SETTINGS {
        for value in values {
            // Any answer will do, as long as it is one.
            let _ = from_env(&[(s.env, value)]);
        }
    }
}

#[test]
fn the_activity_lag_is_capped_at_a_tenth_of_the_timeout_and_says_so() {
    let c = from_env(&[("SESSIOND_SESSION_TIMEOUT", "2s")]).unwrap();
    assert_eq!(c.activity_lag, Duration::from_millis(200));
    assert_eq!(
        c.notices,
        ["the default activity lag (1s) is capped at 200ms, a tenth of the session timeout (2s)"]
    );
    let c = from_env(&[("SESSIOND_ACTIVITY_LAG", "10m")]).unwrap();
    assert_eq!(c.activity_lag, Duration::from_secs(180));
    assert_eq!(
        c.notices,
        ["SESSIOND_ACTIVITY_LAG (10m) is capped at 3m, a tenth of the session timeout (30m)"]
    );
    let c = from_env(&[("SESSIOND_ACTIVITY_LAG", "2m")]).unwrap();
    assert_eq!(c.activity_lag, Duration::from_secs(120));
    assert!(c.notices.is_empty());
}

#[test]
fn every_variable_is_its_key_in_upper_case_with_the_prefix() {
    for s in SETTINGS {
        let expected = if s.key == "database_url" {
            "DATABASE_URL".to_owned()
        } else {
            format!("SESSIOND_{}", s.key.to_ascii_uppercase())
        };
        assert_eq!(s.env, expected);
    }
}

#[test]
fn every_range_reads_and_holds_its_shown_default() {
    let defaults = format!("{:?}", Config::default());
    let mut read = 0;
    for s in SETTINGS {
        // Its shown default, "host name", is also a valid name.
        if s.key == "location" {
            continue;
        }
        if let Some((lo, hi)) = s.range {
            for bound in [lo, hi] {
                // A bound must be a value the setting accepts.
                from_env(&[(s.env, bound)]).unwrap_or_else(|e| panic!("{}: {e}", s.env));
            }
        }
        // Where the shown default is a value, reading it gives the default.
        if let Ok(c) = from_env(&[(s.env, s.default), ("SESSIOND_SESSION_TIMEOUT", "30m")]) {
            assert_eq!(format!("{c:?}"), defaults, "{}", s.env);
            read += 1;
        }
    }
    assert!(read >= 15, "only {read} shown defaults read back");
}

#[test]
fn help_lists_every_variable_with_its_default() {
    let help = help();
    for s in SETTINGS {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{} ", s.env)))
            .unwrap_or_else(|| panic!("{} not in help", s.env));
        assert!(
            line.contains(&format!("[default: {}]", s.default)),
            "{line}"
        );
    }
    assert!(help.contains(CONFIG_FILE_VAR));
}

#[test]
fn the_readme_table_gives_every_setting_with_its_default_and_range() {
    let readme = include_str!("../../README.md");
    for s in SETTINGS {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", s.env)))
            .unwrap_or_else(|| panic!("{} is not in the README's table", s.env));
        let cells: Vec<&str> = row.split('|').map(|c| c.trim().trim_matches('`')).collect();
        assert_eq!(cells[2], s.default, "{row}");
        let range = s.range.map(|(lo, hi)| format!("{lo} to {hi}"));
        assert_eq!(cells[3], range.as_deref().unwrap_or(""), "{row}");
    }
}

#[test]
fn durations_are_shown_in_their_largest_whole_unit() {
    let s = |ms| show_duration(Duration::from_millis(ms));
    assert_eq!(
        [
            s(0),
            s(200),
            s(1500),
            s(90_000),
            s(180_000),
            s(7_200_000),
            s(365 * 86_400_000)
        ],
        ["0s", "200ms", "1500ms", "90s", "3m", "2h", "365d"]
    );
}

#[test]
fn a_tls_certificate_without_a_key_names_the_missing_key() {
    let err = from_env(&[("SESSIOND_TLS_CERT", "/etc/s/cert.pem")]).unwrap_err();
    assert!(err.starts_with("SESSIOND_TLS_KEY:"), "{err}");
    let err = from_env(&[("SESSIOND_TLS_KEY", "/etc/s/key.pem")]).unwrap_err();
    assert!(err.starts_with("SESSIOND_TLS_CERT:"), "{err}");
    let both = from_env(&[
        ("SESSIOND_TLS_CERT", "c.pem"),
        ("SESSIOND_TLS_KEY", "k.pem"),
    ])
    .unwrap();
    assert_eq!(both.tls_key, Some(PathBuf::from("k.pem")));
}

#[test]
fn the_console_path_gets_a_trailing_slash_and_off_turns_it_off() {
    assert_eq!(
        from_env(&[]).unwrap().console_path.as_deref(),
        Some("/admin/")
    );
    let c = from_env(&[("SESSIOND_CONSOLE_PATH", "/ops")]).unwrap();
    assert_eq!(c.console_path.as_deref(), Some("/ops/"));
    let c = from_env(&[("SESSIOND_CONSOLE_PATH", "off")]).unwrap();
    assert_eq!(c.console_path, None);
    let e = from_env(&[("SESSIOND_CONSOLE_PATH", "admin")]).unwrap_err();
    assert!(e.to_string().contains("SESSIOND_CONSOLE_PATH"), "{e}");
}

#[test]
fn the_directory_is_read_from_the_ldap_table_with_lists_as_arrays() {
    let c = from_file(
        "[ldap]\nurl = [\"ldaps://a.example.org\", \"ldaps://b.example.org:636\"]\n\
         user_base = \"ou=people,dc=example,dc=org\"\nstarttls = false\n\
         admin_groups = [\"cn=admins,ou=a,dc=example,dc=org\", \"cn=ops,dc=example,dc=org\"]\n\
         nested_groups = true\ntimeout = \"2s\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.ldap_url.len(), 2);
    assert_eq!(c.ldap_admin_groups[0], "cn=admins,ou=a,dc=example,dc=org");
    assert_eq!(c.ldap_admin_groups.len(), 2);
    assert!(c.ldap_nested_groups);
    assert_eq!(c.ldap_timeout, Duration::from_secs(2));
}

#[test]
fn directory_urls_are_split_on_spaces_and_group_dns_on_semicolons() {
    let c = from_env(&[
        ("SESSIOND_LDAP_URL", "ldap://a:389 ldaps://b"),
        ("SESSIOND_LDAP_USER_BASE", "dc=example,dc=org"),
        (
            "SESSIOND_LDAP_VIEW_GROUPS",
            "cn=v,ou=g,dc=example,dc=org; cn=w,dc=example,dc=org",
        ),
        ("SESSIOND_LDAP_STARTTLS", "true"),
    ])
    .unwrap();
    assert_eq!(c.ldap_url, ["ldap://a:389", "ldaps://b"]);
    assert_eq!(
        c.ldap_view_groups,
        ["cn=v,ou=g,dc=example,dc=org", "cn=w,dc=example,dc=org"]
    );
    assert!(c.ldap_starttls);
}

#[test]
fn a_bad_directory_setting_names_its_variable() {
    let e = from_env(&[("SESSIOND_LDAP_URL", "http://a")]).unwrap_err();
    assert!(e.starts_with("SESSIOND_LDAP_URL:"), "{e}");
    let e = from_env(&[("SESSIOND_LDAP_URL", "ldap://a")]).unwrap_err();
    assert!(e.starts_with("SESSIOND_LDAP_USER_BASE:"), "{e}");
    let e = from_env(&[("SESSIOND_LDAP_USER_FILTER", "uid=x")]).unwrap_err();
    assert!(e.starts_with("SESSIOND_LDAP_USER_FILTER:"), "{e}");
    let e = from_file("[ldap]\nnested_groups = \"maybe\"\n", &[]).unwrap_err();
    assert!(e.contains("ldap.nested_groups in s.toml"), "{e}");
}

// ----- config check, misspelt variables, the packaged file -----

fn effective(text: Option<&str>, pairs: &[(&str, &str)]) -> Vec<Effective> {
    let file = text.map(|t| (Path::new("s.toml"), t));
    Config::read_sources(file, &env(pairs), true).unwrap().1
}

fn one<'a>(list: &'a [Effective], env: &str) -> &'a Effective {
    list.iter().find(|e| e.setting.env == env).unwrap()
}

#[test]
fn config_check_gives_every_setting_with_its_source() {
    let list = effective(
        Some("session_timeout = \"10m\"\nworkers = 3\n"),
        &[("SESSIOND_WORKERS", "2"), ("SESSIOND_BIND", "127.0.0.1:9")],
    );
    assert_eq!(list.len(), SETTINGS.len());
    let timeout = one(&list, "SESSIOND_SESSION_TIMEOUT");
    assert_eq!(
        (timeout.value.as_str(), &timeout.source),
        ("10m", &Source::File(PathBuf::from("s.toml")))
    );
    let workers = one(&list, "SESSIOND_WORKERS");
    assert_eq!(
        (workers.value.as_str(), &workers.source),
        ("2", &Source::Environment("SESSIOND_WORKERS".into()))
    );
    let lag = one(&list, "SESSIOND_REVOCATION_LAG");
    assert_eq!(
        (lag.value.as_str(), &lag.source),
        ("100ms", &Source::Default)
    );
}

#[test]
fn config_check_masks_the_database_password_and_secret_settings() {
    let url = "postgres://app:s3cret@db.example:5432/sessions?sslmode=require&password=x2";
    let list = effective(None, &[("DATABASE_URL", url)]);
    let shown = &one(&list, "DATABASE_URL").value;
    assert!(
        !shown.contains("s3cret") && !shown.contains("x2"),
        "{shown}"
    );
    assert!(
        shown.contains("app:") && shown.contains("db.example:5432/sessions"),
        "{shown}"
    );
    assert!(shown.contains("sslmode=require"), "{shown}");
    assert_eq!(mask("ldap_bind_password", "hunter2"), "********");
    // A path to a file with a secret, or a rule about passwords, is no secret.
    assert_eq!(mask("ldap_bind_password_file", "/etc/p"), "/etc/p");
    assert_eq!(mask("password_min_length", "12"), "12");
    assert_eq!(
        mask("database_url", "sqlite:///var/lib/s.db"),
        "sqlite:///var/lib/s.db"
    );
}

#[test]
fn a_misspelt_variable_leaves_a_notice_naming_the_nearest_setting() {
    let c = from_env(&[("SESSIOND_SESION_TIMEOUT", "5m"), ("HOME", "/")]).unwrap();
    assert_eq!(c.session_timeout, DEFAULT_SESSION_TIMEOUT);
    assert_eq!(
        c.notices,
        ["SESSIOND_SESION_TIMEOUT is not a setting and is ignored (did you mean SESSIOND_SESSION_TIMEOUT?)"]
    );
    let c = from_env(&[("SESSIOND_COLOUR", "blue")]).unwrap();
    assert!(
        c.notices[0].contains("sessiond --help lists them"),
        "{:?}",
        c.notices
    );
    // The file's variable, and the test harness's, are not settings but not mistakes either.
    let c = from_env(&[
        ("SESSIOND_CONFIG", "x.toml"),
        ("SESSIOND_TEST_BACKEND", "sqlite"),
        ("SESSIOND_BIN", "/bin/true"),
    ])
    .unwrap();
    assert!(c.notices.is_empty(), "{:?}", c.notices);
}

#[test]
fn sqlite_colon_path_names_the_file_after_the_colon() {
    let c = from_env(&[("DATABASE_URL", "sqlite:sessiond.db")]).unwrap();
    assert_eq!(
        (c.database.backend, c.database.target.as_str()),
        (Backend::Sqlite, "sessiond.db")
    );
}

/// The packaged `/etc/sessiond/sessiond.toml`: the example, with the state directory's paths.
const PACKAGED_HEADER: &str = "\
# /etc/sessiond/sessiond.toml: sessiond's settings (TOML), read by sessiond.service
# (SESSIOND_CONFIG). Every setting is listed, commented out at its default; the environment
# variable named with each wins over this file (`systemctl edit sessiond` to set one there).
# Durations: 90s, 30m, 2h, 30d. After a change:
#   sessiond --config /etc/sessiond/sessiond.toml config check && systemctl restart sessiond
# The database and the first start's admin password live in /var/lib/sessiond.
# Generated from the settings table: `BLESS=1 cargo test --lib config::` rewrites it.
";
const PACKAGED_OVERRIDES: &[(&str, &str)] = &[
    ("database_url", "sqlite:///var/lib/sessiond/sessiond.db"),
    (
        "admin_password_file",
        "/var/lib/sessiond/sessiond-admin-password.txt",
    ),
    ("bind", "0.0.0.0:8080"),
];
const PACKAGED_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/sessiond.toml");

#[test]
fn the_packaged_config_file_lists_every_setting_from_the_table() {
    let generated = example(PACKAGED_HEADER, PACKAGED_OVERRIDES);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(PACKAGED_PATH, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(PACKAGED_PATH).unwrap_or_default();
    assert!(
        committed == generated,
        "contrib/sessiond.toml is not what the settings table makes: run \
         `BLESS=1 cargo test --lib config::` and commit it"
    );
}

#[test]
fn the_packaged_config_file_parses_to_the_state_directory() {
    let text = std::fs::read_to_string(PACKAGED_PATH).unwrap();
    let c = Config::from_sources(Some((Path::new(PACKAGED_PATH), &text)), &env(&[])).unwrap();
    assert_eq!(c.database.target, "/var/lib/sessiond/sessiond.db");
    assert_eq!(
        c.admin_password_file,
        PathBuf::from("/var/lib/sessiond/sessiond-admin-password.txt")
    );
    // Every commented-out setting, uncommented, is its default: nothing else changes.
    let uncommented: String = text
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| {
            SETTINGS
                .iter()
                .any(|s| l.starts_with(&format!("{} = ", s.key)))
        })
        .filter(|l| !l.contains("= ..."))
        .map(|l| format!("{l}\n"))
        .collect();
    let d = Config::from_sources(Some((Path::new("u.toml"), &uncommented)), &env(&[])).unwrap();
    assert_eq!(format!("{d:?}"), format!("{:?}", Config::default()));
    assert!(uncommented.lines().count() >= 15, "{uncommented}");
}

#[test]
fn the_example_comments_out_every_setting_at_its_default() {
    let text = example("", &[]);
    for s in SETTINGS {
        assert!(
            text.contains(&format!("\n#{} = ", s.key)),
            "{} missing from the example",
            s.key
        );
        assert!(text.contains(&format!("# {}; default: {}", s.env, s.default)));
    }
    assert!(text.contains("#location = ...  (host name)"), "{text}");
    assert!(text.contains("#session_timeout = \"30m\""), "{text}");
    assert!(text.contains("#cache_capacity = 200000"), "{text}");
}

#[test]
fn config_check_reads_the_ldap_table_as_serve_does() {
    let list = effective(
        Some("[ldap]\nurl = [\"ldaps://a.example.org\"]\nuser_base = \"dc=example,dc=org\"\n"),
        &[],
    );
    let url = one(&list, "SESSIOND_LDAP_URL");
    assert_eq!(
        (url.value.as_str(), &url.source),
        (
            "ldaps://a.example.org",
            &Source::File(PathBuf::from("s.toml"))
        )
    );
}
