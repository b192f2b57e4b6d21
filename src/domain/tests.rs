use super::*;

#[test]
fn generated_session_ids_are_url_safe_and_distinct() {
    let a = SessionId::generate().unwrap();
    let b = SessionId::generate().unwrap();
    assert_ne!(a, b);
    assert_eq!(a.as_str().len(), 43);
    assert!(SessionId::parse(a.as_str()).is_ok());
}

#[test]
fn session_ids_refuse_other_characters_and_lengths() {
    assert!(SessionId::parse("").is_err());
    assert!(SessionId::parse("a b").is_err());
    assert!(SessionId::parse(&"a".repeat(65)).is_err());
    assert!(SessionId::parse(&"a".repeat(64)).is_ok());
}

#[test]
fn debug_and_display_never_show_a_whole_session_id() {
    let id = SessionId::generate().unwrap();
    assert!(!format!("{id:?}").contains(id.as_str()));
    assert!(!format!("{id}").contains(id.as_str()));
}

#[test]
fn user_ids_are_one_to_sixty_four_characters() {
    assert!(UserId::parse("").is_err());
    assert!(UserId::parse(&"é".repeat(64)).is_ok());
    assert!(UserId::parse(&"é".repeat(65)).is_err());
    assert!(UserId::parse("a\nb").is_err());
}

#[test]
fn user_ids_refuse_whitespace_and_control_characters() {
    for bad in [
        "a b",
        " alice",
        "alice ",
        "a\tb",
        "a\u{a0}b",
        "a\u{2003}b",
        "a\u{7}b",
    ] {
        assert!(UserId::parse(bad).is_err(), "{bad:?} was taken");
    }
    assert_eq!(
        UserId::parse("a b").err(),
        Some(DomainError::Whitespace { what: "a user ID" })
    );
    assert!(UserId::parse("alice.o'neil@example-1").is_ok());
    // Departments are names: they may have spaces.
    assert!(Department::parse("Sales EMEA").is_ok());
}

#[test]
fn passwords_are_one_to_1024_bytes_and_never_shown_by_debug() {
    assert_eq!(
        Password::parse(String::new()).err(),
        Some(DomainError::EmptyPassword)
    );
    assert_eq!(
        Password::parse("x".repeat(1025)).err(),
        Some(DomainError::LongPassword)
    );
    let p = Password::parse("x".repeat(1024)).unwrap();
    assert!(!format!("{p:?}").contains('x'));
}

#[test]
fn client_names_are_at_most_256_printable_characters() {
    assert!(ClientName::parse(&"é".repeat(256)).is_ok());
    assert!(ClientName::parse(&"é".repeat(257)).is_err());
    assert!(ClientName::parse("a\tb").is_err());
    assert!(ClientName::parse("").is_ok());
}

#[test]
fn end_reasons_have_distinct_names() {
    let names: std::collections::HashSet<_> = EndReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(names.len(), EndReason::ALL.len());
    assert!(names.contains("evicted"));
}

#[test]
fn limit_policies_parse_by_their_names_only() {
    assert_eq!("deny".parse::<LimitPolicy>().unwrap(), LimitPolicy::Deny);
    assert_eq!(
        "Evict-Oldest".parse::<LimitPolicy>().unwrap(),
        LimitPolicy::EvictOldest
    );
    assert!("evict".parse::<LimitPolicy>().is_err());
}

#[test]
fn rights_parse_in_any_case() {
    assert_eq!(
        "viewsessionright".parse::<Right>().unwrap(),
        Right::ViewSession
    );
    assert!("Root".parse::<Right>().is_err());
}
