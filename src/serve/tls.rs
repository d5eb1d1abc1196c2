//! The web config's `tls_server_config` as a rustls server configuration: certificate
//! chain and key (checked to match), client certificates (`client_auth_type` with
//! `client_ca_file`), protocol versions. Paths are relative to the web config's directory,
//! as in the exporter-toolkit.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};

use super::webconfig::TlsFormat;

fn version(key: &str, v: &str) -> Result<&'static SupportedProtocolVersion, String> {
    match v {
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS10" | "TLS11" => Err(format!(
            "tls_server_config.{key}: {v} is not supported (TLS12 or TLS13)"
        )),
        _ => Err(format!(
            "tls_server_config.{key}: unknown version '{v}' (TLS12 or TLS13)"
        )),
    }
}

fn certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bad = |e: &dyn std::fmt::Display| format!("{key} {}: {e}", path.display());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(&pem_message(e)))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(&pem_message(e)))?;
    if certs.is_empty() {
        return Err(bad(&"no PEM certificate in it"));
    }
    Ok(certs)
}

/// A PEM reader's error; an I/O one in the OS's words.
fn pem_message(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => super::webconfig::io_message(&io),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item in it".into(),
        other => format!("{other:?}"),
    }
}

/// The server configuration and the files it was read from.
pub(super) fn server_config(
    t: &TlsFormat,
    dir: &Path,
) -> Result<(ServerConfig, Vec<PathBuf>), String> {
    let path = |key: &str, v: &Option<String>| -> Result<PathBuf, String> {
        let v = v
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("tls_server_config.{key} is required"))?;
        Ok(dir.join(v))
    };
    let cert_file = path("cert_file", &t.cert_file)?;
    let key_file = path("key_file", &t.key_file)?;
    let chain = certs("cert_file", &cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&key_file)
        .map_err(|e| format!("key_file {}: {}", key_file.display(), pem_message(e)))?;
    let mut files = vec![cert_file, key_file];

    let lo = version("min_version", t.min_version.as_deref().unwrap_or("TLS12"))?;
    let hi = version("max_version", t.max_version.as_deref().unwrap_or("TLS13"))?;
    let versions: Vec<&'static SupportedProtocolVersion> =
        [&rustls::version::TLS12, &rustls::version::TLS13]
            .into_iter()
            .filter(|v| {
                let n = |x: &SupportedProtocolVersion| u16::from(x.version);
                n(v) >= n(lo) && n(v) <= n(hi)
            })
            .collect();
    if versions.is_empty() {
        return Err("tls_server_config: min_version is above max_version".into());
    }
    // ring, deprecated in rustls for lacking post-quantum key exchange, builds without
    // the C toolchain aws-lc needs; a scrape endpoint's TLS does not need that exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;

    let auth = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let ca = t.client_ca_file.as_deref().filter(|s| !s.is_empty());
    let builder = match (auth, ca) {
        ("NoClientCert" | "", None) => builder.with_no_client_auth(),
        ("NoClientCert" | "", Some(_)) => {
            return Err(
                "tls_server_config: client_ca_file is set but client_auth_type is NoClientCert"
                    .into(),
            )
        }
        ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven", None) => {
            return Err(format!(
                "tls_server_config: client_auth_type {auth} needs client_ca_file"
            ))
        }
        ("RequireAndVerifyClientCert" | "VerifyClientCertIfGiven", Some(ca)) => {
            let ca_file = dir.join(ca);
            let mut roots = RootCertStore::empty();
            for c in certs("client_ca_file", &ca_file)? {
                roots
                    .add(c)
                    .map_err(|e| format!("client_ca_file {}: {e}", ca_file.display()))?;
            }
            files.push(ca_file);
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if auth == "VerifyClientCertIfGiven" {
                v.allow_unauthenticated()
            } else {
                v
            };
            let v = v
                .build()
                .map_err(|e| format!("tls_server_config.client_ca_file: {e}"))?;
            builder.with_client_cert_verifier(v)
        }
        ("RequestClientCert" | "RequireAnyClientCert", _) => {
            return Err(format!(
                "tls_server_config.client_auth_type: {auth} (a certificate nobody verifies) is not \
                 supported: use RequireAndVerifyClientCert or VerifyClientCertIfGiven"
            ))
        }
        (other, _) => {
            return Err(format!(
                "tls_server_config.client_auth_type: unknown '{other}' (NoClientCert, \
                 VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
            ))
        }
    };
    // with_single_cert checks that the key is the certificate's.
    let mut cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("cert_file and key_file: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((cfg, files))
}
