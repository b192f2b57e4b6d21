//! Reaching the directory: the URLs in order with the ones that failed skipped for a while,
//! TLS that verifies the server's certificate and name, and a small pool of searching
//! connections bound as the service account. A user's bind always gets a fresh connection of
//! its own, so no pooled connection ever changes identity.
//!
//! The pool is a few idle connections behind a semaphore rather than a pool crate: searches
//! are short, the number in flight is bounded by the permits, and an idle connection found
//! closed is simply replaced, which is all a crate would add here.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions};
use rustls::pki_types::{pem::PemObject, CertificateDer};
use rustls::{ClientConfig, RootCertStore};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{DirectoryError, DirectorySettings, Inner};

/// Searching connections: idle ones kept, and searches in flight at once.
const SEARCHERS: usize = 4;
/// LDAP result codes sessiond tells apart.
const SUCCESS: u32 = 0;
const SIZE_LIMIT_EXCEEDED: u32 = 4;
const NO_SUCH_OBJECT: u32 = 32;
const INVALID_CREDENTIALS: u32 = 49;

struct Server {
    url: String,
    /// Not tried again before this instant, after it failed to answer.
    down_until: Mutex<Option<Instant>>,
}

struct Pooled {
    server: usize,
    ldap: Ldap,
}

pub(super) struct Servers {
    servers: Vec<Server>,
    tls: Arc<ClientConfig>,
    starttls: bool,
    timeout: Duration,
    idle: Mutex<Vec<Pooled>>,
    permits: Arc<Semaphore>,
}

/// A searching connection lent out, with its permit; [`Ticket::give_back`] returns it to the
/// pool, dropping it closes it.
pub(super) struct Ticket<'a> {
    servers: &'a Servers,
    conn: Option<Pooled>,
    _permit: OwnedSemaphorePermit,
}

/// The roots to verify the directory's certificate with: the CA file's, else the system's.
fn tls_config(settings: &DirectorySettings) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match &settings.ca_file {
        Some(path) => {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read the CA file {shown}: {e}"))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("the CA file {shown}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("the CA file {shown}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("the CA file {shown} holds no certificate"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS for the directory: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Servers {
    pub(super) fn new(settings: &DirectorySettings) -> Result<Self, String> {
        let needs_tls = settings.starttls
            || settings
                .urls
                .iter()
                .any(|u| u.to_ascii_lowercase().starts_with("ldaps://"));
        let tls = if needs_tls {
            tls_config(settings)?
        } else {
            // Never used for plain connections, but ldap3 wants one at hand.
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            Arc::new(
                ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("TLS for the directory: {e}"))?
                    .with_root_certificates(RootCertStore::empty())
                    .with_no_client_auth(),
            )
        };
        Ok(Self {
            servers: settings
                .urls
                .iter()
                .map(|url| Server {
                    url: url.clone(),
                    down_until: Mutex::new(None),
                })
                .collect(),
            tls,
            starttls: settings.starttls,
            timeout: settings.timeout,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(SEARCHERS)),
        })
    }

    /// A failed server is skipped for as long as one attempt may take: a dead directory
    /// then holds up at most one login in every such period, and is tried again after it.
    fn skip(&self) -> Duration {
        self.timeout.max(Duration::from_secs(1))
    }

    fn mark_down(&self, server: usize, why: &str) {
        let s = &self.servers[server];
        let mut until = s.down_until.lock().unwrap_or_else(|e| e.into_inner());
        if until.is_none_or(|t| t <= Instant::now()) {
            log::warn!(
                "directory server {} failed ({why}); skipped for {:?}",
                s.url,
                self.skip()
            );
        }
        *until = Some(Instant::now() + self.skip());
    }

    fn mark_up(&self, server: usize) {
        let s = &self.servers[server];
        let mut until = s.down_until.lock().unwrap_or_else(|e| e.into_inner());
        if until.take().is_some() {
            log::info!("directory server {} answers again", s.url);
        }
    }

    fn is_down(&self, server: usize) -> bool {
        let until = self.servers[server]
            .down_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|t| t > Instant::now())
    }

    /// One connection to one server, TLS set up as configured, within the timeout.
    async fn connect(&self, inner: &Inner, server: usize) -> Result<Ldap, DirectoryError> {
        let url = &self.servers[server].url;
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.starttls)
            .set_config(self.tls.clone());
        let started = Instant::now();
        let opened =
            tokio::time::timeout(self.timeout, LdapConnAsync::with_settings(settings, url)).await;
        let result = match opened {
            Err(_) => Err(DirectoryError::Unreachable(format!(
                "{url}: no connection within {:?}",
                self.timeout
            ))),
            Ok(Err(e)) => Err(DirectoryError::Unreachable(format!("{url}: {e}"))),
            Ok(Ok((conn, ldap))) => {
                tokio::spawn(async move {
                    if let Err(e) = conn.drive().await {
                        log::debug!("directory connection ended: {e}");
                    }
                });
                Ok(ldap)
            }
        };
        inner.observe("connect", started, &result);
        result
    }

    /// A connection to the first server that answers, skipping those that failed lately;
    /// bound as `bind` when given.
    async fn open(
        &self,
        inner: &Inner,
        bind: Option<(&str, &str)>,
    ) -> Result<(usize, Ldap), DirectoryError> {
        let mut last = None;
        for server in 0..self.servers.len() {
            if self.is_down(server) {
                continue;
            }
            let mut ldap = match self.connect(inner, server).await {
                Ok(ldap) => ldap,
                Err(e) => {
                    self.mark_down(server, &e.to_string());
                    last = Some(e);
                    continue;
                }
            };
            if let Some((dn, password)) = bind {
                let started = Instant::now();
                let bound = self.bind(&mut ldap, server, dn, password).await;
                inner.observe("service_bind", started, &bound);
                match bound {
                    Ok(Ok(())) => {}
                    Ok(Err(refused)) => {
                        return Err(DirectoryError::Failed(format!(
                            "the service account {dn} was refused: {refused}"
                        )))
                    }
                    Err(e) => {
                        last = Some(e);
                        continue;
                    }
                }
            }
            self.mark_up(server);
            return Ok((server, ldap));
        }
        Err(last.unwrap_or_else(|| {
            let urls: Vec<&str> = self.servers.iter().map(|s| s.url.as_str()).collect();
            DirectoryError::Unreachable(format!(
                "every server failed within the last {:?} ({})",
                self.skip(),
                urls.join(" ")
            ))
        }))
    }

    /// A simple bind within the timeout: `Ok(Ok)` bound, `Ok(Err(why))` refused by the server
    /// (`invalidCredentials` and the like), `Err` the server did not answer (marked down).
    async fn bind(
        &self,
        ldap: &mut Ldap,
        server: usize,
        dn: &str,
        password: &str,
    ) -> Result<Result<(), String>, DirectoryError> {
        let url = &self.servers[server].url;
        match tokio::time::timeout(self.timeout, ldap.simple_bind(dn, password)).await {
            Err(_) => {
                let e = DirectoryError::Unreachable(format!(
                    "{url}: no answer to a bind within {:?}",
                    self.timeout
                ));
                self.mark_down(server, &e.to_string());
                Err(e)
            }
            Ok(Err(e)) => {
                let e = DirectoryError::Unreachable(format!("{url}: {e}"));
                self.mark_down(server, &e.to_string());
                Err(e)
            }
            Ok(Ok(r)) if r.rc == SUCCESS => Ok(Ok(())),
            Ok(Ok(r)) => Ok(Err(format!("{} ({})", r.rc, r.text))),
        }
    }

    /// A bind as a user's entry on a fresh connection: true when the password is right,
    /// false on `invalidCredentials`.
    pub(super) async fn user_bind(
        &self,
        inner: &Inner,
        dn: &str,
        password: &str,
    ) -> Result<bool, DirectoryError> {
        // An empty simple bind is an anonymous bind, which succeeds: never send one.
        if password.is_empty() {
            return Ok(false);
        }
        let (server, mut ldap) = self.open(inner, None).await?;
        let started = Instant::now();
        let bound = self.bind(&mut ldap, server, dn, password).await;
        let answer = match bound {
            Ok(Ok(())) => {
                inner.count("user_bind", "ok", started);
                Ok(true)
            }
            Ok(Err(refused)) if refused.starts_with(&format!("{INVALID_CREDENTIALS} ")) => {
                inner.count("user_bind", "invalid_credentials", started);
                Ok(false)
            }
            Ok(Err(refused)) => {
                inner.count("user_bind", "error", started);
                Err(DirectoryError::Failed(format!(
                    "the bind as {dn} failed: {refused}"
                )))
            }
            Err(e) => {
                inner.count("user_bind", "unreachable", started);
                Err(e)
            }
        };
        close(ldap);
        answer
    }

    /// A searching connection: an idle one from the pool, else a new one bound as the service
    /// account. Waits at most the timeout for one of the permits.
    pub(super) async fn searcher(&self, inner: &Inner) -> Result<Ticket<'_>, DirectoryError> {
        let permit = tokio::time::timeout(self.timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                DirectoryError::Unreachable(format!(
                    "all {SEARCHERS} searching connections stayed busy for {:?}",
                    self.timeout
                ))
            })?
            .map_err(|_| DirectoryError::Failed("the directory client has stopped".into()))?;
        let pooled = loop {
            let next = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match next {
                // A connection to a server that failed since is not tried: it would wait the
                // timeout again.
                Some(mut p) => {
                    if !p.ldap.is_closed() && !self.is_down(p.server) {
                        break Some(p);
                    }
                    close(p.ldap);
                }
                None => break None,
            }
        };
        let conn = match pooled {
            Some(p) => p,
            None => {
                let bind = inner
                    .settings
                    .bind
                    .as_ref()
                    .map(|(dn, pw)| (dn.as_str(), pw.as_str()));
                let (server, ldap) = self.open(inner, bind).await?;
                Pooled { server, ldap }
            }
        };
        Ok(Ticket {
            servers: self,
            conn: Some(conn),
            _permit: permit,
        })
    }
}

impl Ticket<'_> {
    /// A search within the timeout; entries only (no referrals). A base search of an entry
    /// that does not exist finds nothing; any other error of the server is `Failed`, and no
    /// answer in time marks the server down.
    pub(super) async fn search(
        &mut self,
        inner: &Inner,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
        size_limit: i32,
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let servers = self.servers;
        let Some(conn) = self.conn.as_mut() else {
            return Err(DirectoryError::Failed("no searching connection".into()));
        };
        let url = &servers.servers[conn.server].url;
        let _ = inner;
        let attributes: Vec<String> = attributes.iter().map(|a| (*a).to_owned()).collect();
        let search = conn
            .ldap
            .with_search_options(SearchOptions::new().sizelimit(size_limit))
            .search(base, scope, filter, attributes);
        let result = match tokio::time::timeout(servers.timeout, search).await {
            Err(_) => Err(DirectoryError::Unreachable(format!(
                "{url}: no answer to a search within {:?}",
                servers.timeout
            ))),
            Ok(Err(e)) => Err(unreachable_or_failed(url, e)),
            Ok(Ok(ldap3::SearchResult(entries, r))) => match r.rc {
                SUCCESS | SIZE_LIMIT_EXCEEDED => Ok(entries
                    .into_iter()
                    .filter(|e| !e.is_ref() && !e.is_intermediate())
                    .map(SearchEntry::construct)
                    .collect()),
                NO_SUCH_OBJECT if matches!(scope, Scope::Base) => Ok(Vec::new()),
                rc => Err(DirectoryError::Failed(format!(
                    "{url}: a search under {base} failed: {rc} ({})",
                    r.text
                ))),
            },
        };
        if let Err(DirectoryError::Unreachable(why)) = &result {
            servers.mark_down(conn.server, why);
            // A connection that did not answer is not lent again.
            if let Some(p) = self.conn.take() {
                close(p.ldap);
            }
        }
        result
    }

    /// Returns the connection to the pool (kept if there is room).
    pub(super) fn give_back(mut self) {
        if let Some(p) = self.conn.take() {
            let mut idle = self.servers.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < SEARCHERS {
                idle.push(p);
            } else {
                close(p.ldap);
            }
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.conn.take() {
            close(p.ldap);
        }
    }
}

/// Unbinds in the background, without waiting for the server.
fn close(mut ldap: Ldap) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(1), ldap.unbind()).await;
    });
}

fn unreachable_or_failed(url: &str, e: LdapError) -> DirectoryError {
    match e {
        LdapError::LdapResult { result } => {
            DirectoryError::Failed(format!("{url}: {} ({})", result.rc, result.text))
        }
        other => DirectoryError::Unreachable(format!("{url}: {other}")),
    }
}
