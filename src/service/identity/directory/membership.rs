//! Which configured groups a user's entry is a member of: the group's `member` or
//! `uniqueMember` holding the user's DN (asked of the directory, which compares DN values as
//! its schema says), or the user's `memberOf` holding the group's DN (compared here, as DNs).
//! Never by a group's first RDN: `cn=admins,ou=a` and `cn=admins,ou=b` are different groups.
//!
//! Nesting, when asked for, follows the members of each configured group downward: a member
//! that is itself a group holding the user (at any depth) makes the user a member. It costs
//! two reads per member visited, bounded by [`MAX_VISITS`] per group and [`MAX_DEPTH`].

use std::collections::{HashSet, VecDeque};

use ldap3::{ldap_escape, Scope, SearchEntry};

use super::connect::Ticket;
use super::{values, DirectoryError, Inner};

/// Entries read below one configured group when following nested groups.
const MAX_VISITS: usize = 256;
/// Levels of groups within groups followed.
const MAX_DEPTH: usize = 8;

/// The configured groups (of every right) the entry is a member of, each named once.
pub(super) async fn groups_of(
    inner: &Inner,
    ticket: &mut Ticket<'_>,
    entry: &SearchEntry,
) -> Result<Vec<String>, DirectoryError> {
    let s = &inner.settings;
    let mut configured: Vec<&String> = Vec::new();
    for g in s
        .admin_groups
        .iter()
        .chain(&s.update_groups)
        .chain(&s.view_groups)
    {
        if !configured.iter().any(|c| same_dn(c, g)) {
            configured.push(g);
        }
    }
    let member_of: Vec<&str> = values(entry, "memberOf").collect();
    let mut found = Vec::new();
    for group in configured {
        let listed = member_of.iter().any(|m| same_dn(m, group));
        if listed || holds(inner, ticket, group, &entry.dn).await? {
            found.push(group.clone());
        }
    }
    Ok(found)
}

/// Whether `group` (or, with nesting, a group below it) lists `user` as a member.
async fn holds(
    inner: &Inner,
    ticket: &mut Ticket<'_>,
    group: &str,
    user: &str,
) -> Result<bool, DirectoryError> {
    let escaped = ldap_escape(user);
    let filter = format!("(|(member={escaped})(uniqueMember={escaped}))");
    let mut queue = VecDeque::from([(normalize(group), group.to_owned(), 0usize)]);
    let mut seen: HashSet<String> = HashSet::new();
    let user_key = normalize(user);
    while let Some((key, dn, depth)) = queue.pop_front() {
        if !seen.insert(key) || seen.len() > MAX_VISITS {
            continue;
        }
        let started = std::time::Instant::now();
        let hit = ticket
            .search(inner, &dn, Scope::Base, &filter, &["1.1"], 1)
            .await;
        inner.observe("membership", started, &hit);
        if !hit?.is_empty() {
            return Ok(true);
        }
        if !inner.settings.nested_groups || depth >= MAX_DEPTH {
            continue;
        }
        let started = std::time::Instant::now();
        let members = ticket
            .search(
                inner,
                &dn,
                Scope::Base,
                "(objectClass=*)",
                &["member", "uniqueMember"],
                1,
            )
            .await;
        inner.observe("membership", started, &members);
        for e in members? {
            for value in values(&e, "member").chain(values(&e, "uniqueMember")) {
                // uniqueMember may carry `#'…'B` after the DN.
                let dn = value.split('#').next().unwrap_or(value).trim();
                let key = normalize(dn);
                if key != user_key && !seen.contains(&key) {
                    queue.push_back((key, dn.to_owned(), depth + 1));
                }
            }
        }
    }
    Ok(false)
}

/// Two DNs name the same entry: compared RDN by RDN, attribute types and values
/// case-insensitively, spaces around separators ignored (the case-insensitive matching that
/// `cn`, `ou`, `dc` and `uid` have).
pub(super) fn same_dn(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

/// A DN in one spelling: each `type=value` trimmed and lowercased, joined by `,`. Escaped
/// separators (`\,`, `\+`, `\=`) stay part of their value.
fn normalize(dn: &str) -> String {
    let mut rdns = Vec::new();
    let mut current = String::new();
    let mut chars = dn.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            ',' | ';' => rdns.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    rdns.push(current);
    rdns.iter()
        .map(|rdn| {
            rdn.split('+')
                .map(|ava| match ava.split_once('=') {
                    Some((t, v)) => format!("{}={}", t.trim(), v.trim()).to_lowercase(),
                    None => ava.trim().to_lowercase(),
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_are_equal_whatever_the_case_and_spacing() {
        assert!(same_dn(
            "CN=Admins, OU=Groups,DC=example,DC=org",
            "cn=admins,ou=groups,dc=example,dc=org"
        ));
        assert!(same_dn("uid=a , ou=people", "UID=A,ou=People"));
    }

    #[test]
    fn groups_with_the_same_first_rdn_elsewhere_are_different() {
        assert!(!same_dn(
            "cn=admins,ou=a,dc=example,dc=org",
            "cn=admins,ou=b,dc=example,dc=org"
        ));
        assert!(!same_dn("cn=admins,ou=a", "cn=admins"));
    }

    #[test]
    fn an_escaped_comma_is_part_of_its_value() {
        assert!(!same_dn("cn=a\\,ou=b,dc=x", "cn=a,ou=b,dc=x"));
        assert!(same_dn("cn=a\\,b,dc=x", "CN=A\\,B, dc=x"));
    }
}
