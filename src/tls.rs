//! TLS: the rustls server configuration (TLS 1.2 and 1.3 only, ring as the crypto provider) and
//! the certificate it presents, read from two PEM files and swapped in place on reload.
//!
//! The configuration does not hold a certificate of its own: it asks [`Certificates`] at every
//! handshake (a [`ResolvesServerCert`]), so a reload changes what new connections are shown
//! without rebuilding the server, and connections already open keep going. A reload that fails
//! (a file missing, not PEM, a key that is not the certificate's) changes nothing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Bad { path: PathBuf, message: String },
    #[error("the key in {} is not the key of the certificate in {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
}

/// What the log says about a certificate: enough to tell which one is being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    pub subject: String,
    pub serial: String,
    pub not_after: String,
    /// Whether it is already past `not_after` (it is served all the same, and warned about).
    pub expired: bool,
}

impl fmt::Display for CertSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "subject '{}', serial {}, valid until {}",
            self.subject, self.serial, self.not_after
        )
    }
}

/// The certificate chain and key currently served, and the two files they come from.
pub struct Certificates {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    // Read once per handshake and written once per reload: a lock no request path takes.
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    /// Reads both files; any problem stops here with a message naming the file.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<(Arc<Self>, CertSummary), TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (key, summary) = read_pair(cert_path, key_path, &provider)?;
        let certificates = Arc::new(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: RwLock::new(Arc::new(key)),
        });
        Ok((certificates, summary))
    }

    /// Reads both files again and serves them from the next handshake on; on any error the
    /// pair served so far stays.
    pub fn reload(&self) -> Result<CertSummary, TlsError> {
        let (key, summary) = read_pair(&self.cert_path, &self.key_path, &self.provider)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        Ok(summary)
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The server side of TLS for these certificates: TLS 1.2 and 1.3, no client certificates.
    pub fn server_config(self: &Arc<Self>) -> ServerConfig {
        ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("ring supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(self.clone())
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

fn read_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, CertSummary), TlsError> {
    let bad = |path: &Path, message: String| TlsError::Bad {
        path: path.to_owned(),
        message,
    };
    let cert_pem = read(cert_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert_path, pem_problem(e)))?;
    let Some(leaf) = chain.first() else {
        return Err(bad(
            cert_path,
            "no certificate in it (a PEM block 'BEGIN CERTIFICATE')".into(),
        ));
    };
    let summary = summarize(leaf).map_err(|message| bad(cert_path, message))?;

    let key_pem = read(key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        // The service starts unattended: there is no one to type a passphrase.
        pem::Error::NoItemsFound if contains(&key_pem, b"BEGIN ENCRYPTED PRIVATE KEY") => bad(
            key_path,
            "the private key is encrypted; give it unencrypted (openssl pkey -in KEY -out \
             PLAIN) and protect the file by its mode instead"
                .into(),
        ),
        pem::Error::NoItemsFound => bad(
            key_path,
            "no private key in it (a PEM block 'BEGIN PRIVATE KEY', 'BEGIN RSA PRIVATE KEY' \
             or 'BEGIN EC PRIVATE KEY')"
                .into(),
        ),
        other => bad(key_path, pem_problem(other)),
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad(key_path, format!("unusable private key ({e})")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::Mismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            })
        }
        // A key type whose public half ring cannot give: nothing to compare, as rustls's own
        // `CertifiedKey::from_der` also accepts.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => return Err(bad(cert_path, format!("unusable certificate ({e})"))),
    }
    Ok((certified, summary))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn pem_problem(e: pem::Error) -> String {
    match e {
        pem::Error::NoItemsFound => "nothing in PEM form in it".into(),
        other => format!("not valid PEM ({other})"),
    }
}

fn summarize(leaf: &CertificateDer<'_>) -> Result<CertSummary, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| format!("the first certificate is not valid X.509 ({e})"))?;
    let not_after = cert.validity().not_after;
    Ok(CertSummary {
        subject: cert.subject().to_string(),
        serial: cert.raw_serial_as_string(),
        not_after: not_after.to_string(),
        expired: not_after.timestamp() < chrono::Utc::now().timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        let cert_path = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    fn served_subject(certs: &Certificates) -> Vec<u8> {
        certs.current.read().unwrap().cert[0].to_vec()
    }

    #[test]
    fn a_good_pair_loads_and_names_its_subject() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path(), "one.example");
        let (_, summary) = Certificates::load(&cert, &key).unwrap();
        assert_eq!(summary.subject, "CN=one.example");
        assert!(!summary.expired);
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_and_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = pair(dir.path(), "one");
        let (_, other_key) = pair(dir.path(), "two");
        let err = Certificates::load(&cert, &other_key).unwrap_err();
        assert!(matches!(err, TlsError::Mismatch { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("one.crt") && text.contains("two.key"),
            "{text}"
        );
    }

    #[test]
    fn a_key_file_given_as_the_certificate_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (_, key) = pair(dir.path(), "one");
        let err = Certificates::load(&key, &key).unwrap_err().to_string();
        assert!(
            err.contains("one.key") && err.contains("no certificate"),
            "{err}"
        );
    }

    #[test]
    fn an_encrypted_key_is_refused_saying_so() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path(), "one");
        std::fs::write(
            &key,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = Certificates::load(&cert, &key).unwrap_err().to_string();
        assert!(
            err.contains("one.key") && err.contains("encrypted"),
            "{err}"
        );
    }

    #[test]
    fn a_failed_reload_keeps_the_pair_served_and_a_good_one_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path(), "live");
        let (certs, _) = Certificates::load(&cert, &key).unwrap();
        let before = served_subject(&certs);

        std::fs::write(&cert, "not a certificate").unwrap();
        let err = certs.reload().unwrap_err().to_string();
        assert!(err.contains("live.crt"), "{err}");
        assert_eq!(served_subject(&certs), before);

        let (new_cert, new_key) = pair(dir.path(), "next");
        std::fs::rename(new_cert, &cert).unwrap();
        std::fs::rename(new_key, &key).unwrap();
        assert_eq!(certs.reload().unwrap().subject, "CN=next");
        assert_ne!(served_subject(&certs), before);
    }
}
