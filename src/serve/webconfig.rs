//! `--web.config.file`: the Prometheus exporter-toolkit's web configuration file (the one
//! node_exporter reads), so operators reuse theirs. TLS ([`super::tls`]), basic auth
//! ([`super::auth`]) and extra response headers. Unknown keys are an error. The file and
//! the files it names are re-read when they change (certificate rotation, new users).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::auth::Users;

/// A web configuration that cannot be used: one line naming the file and the problem.
#[derive(Debug, thiserror::Error)]
#[error("web config {}: {problem}", path.display())]
pub struct WebConfigError {
    pub path: PathBuf,
    pub problem: String,
}

/// The file as the exporter-toolkit writes it (the keys sirqtop supports).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    tls_server_config: Option<TlsFormat>,
    http_server_config: Option<HttpFormat>,
    basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFormat {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub client_auth_type: Option<String>,
    pub client_ca_file: Option<String>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFormat {
    /// The toolkit's HTTP/2 switch; sirqtop speaks HTTP/1.1 only, so it changes nothing.
    #[allow(dead_code)]
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// What the serving side applies: TLS, users, extra headers.
#[derive(Debug, Default)]
pub struct WebSettings {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub users: Option<Arc<Users>>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// The headers the toolkit lets a web config set, and what it accepts as their values.
const SETTABLE_HEADERS: [&str; 5] = [
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let known = SETTABLE_HEADERS
        .iter()
        .find(|h| h.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            format!(
                "http_server_config.headers: {name} cannot be set (one of: {})",
                SETTABLE_HEADERS.join(", ")
            )
        })?;
    let ok = match *known {
        "X-Content-Type-Options" => value.eq_ignore_ascii_case("nosniff"),
        "X-Frame-Options" => ["deny", "sameorigin"]
            .iter()
            .any(|v| v.eq_ignore_ascii_case(value)),
        "X-XSS-Protection" => ["0", "1", "1; mode=block"].contains(&value),
        _ => true,
    };
    let v = HeaderValue::from_str(value).ok().filter(|_| ok);
    let v =
        v.ok_or_else(|| format!("http_server_config.headers: {name}: invalid value '{value}'"))?;
    let n = HeaderName::from_bytes(known.as_bytes()).map_err(|e| e.to_string())?;
    Ok((n, v))
}

/// Parses and loads a web config: every named file read and checked. Returns the settings
/// and the files they came from (watched for changes).
fn load(path: &Path) -> Result<(WebSettings, Vec<PathBuf>), WebConfigError> {
    let err = |problem: String| WebConfigError {
        path: path.to_path_buf(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(io_message(&e)))?;
    let parsed: FileFormat = if text.trim().is_empty() {
        FileFormat::default()
    } else {
        serde_saphyr::from_str(&text).map_err(|e| err(one_line(&e.to_string())))?
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut files = vec![path.to_path_buf()];
    let tls = match &parsed.tls_server_config {
        Some(t) => {
            let (cfg, used) = super::tls::server_config(t, dir).map_err(err)?;
            files.extend(used);
            Some(Arc::new(cfg))
        }
        None => None,
    };
    let users = match &parsed.basic_auth_users {
        Some(u) if !u.is_empty() => Some(Arc::new(Users::new(u).map_err(err)?)),
        _ => None,
    };
    let headers = parsed
        .http_server_config
        .as_ref()
        .and_then(|h| h.headers.as_ref())
        .map(|h| h.iter().map(|(n, v)| header(n, v)).collect())
        .transpose()
        .map_err(err)?
        .unwrap_or_default();
    Ok((
        WebSettings {
            tls,
            users,
            headers,
        },
        files,
    ))
}

/// An I/O error in the OS's words, without Rust's " (os error N)".
pub(super) fn io_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(at) => s[..at].to_string(),
        None => s,
    }
}

/// A parser's multi-line message (with a source snippet) as one line.
fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// How often the files are checked for changes, at most.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// What identifies a file's content without reading it.
type Stamp = Vec<Option<(SystemTime, u64, u64)>>;

fn stamp(files: &[PathBuf]) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .map(|f| {
            let m = std::fs::metadata(f).ok()?;
            Some((m.modified().ok()?, m.len(), m.ino()))
        })
        .collect()
}

struct Current {
    settings: Arc<WebSettings>,
    files: Vec<PathBuf>,
    stamp: Stamp,
    checked: Instant,
}

/// A web config that follows its files: [`WebConfig::current`] re-reads them when they
/// changed; a change that does not load keeps the previous settings (and says why once).
pub struct WebConfig {
    path: Option<PathBuf>,
    current: Mutex<Current>,
}

impl WebConfig {
    /// Loads `path` (None: plain HTTP, no auth). Errors name the file and the problem.
    pub fn open(path: Option<&Path>) -> Result<WebConfig, WebConfigError> {
        let (settings, files) = match path {
            Some(p) => load(p)?,
            None => (WebSettings::default(), Vec::new()),
        };
        Ok(WebConfig {
            path: path.map(Path::to_path_buf),
            current: Mutex::new(Current {
                settings: Arc::new(settings),
                stamp: stamp(&files),
                files,
                checked: Instant::now(),
            }),
        })
    }

    /// Whether connections are TLS (fixed at start: a reload cannot switch it).
    pub fn is_tls(&self) -> bool {
        self.lock().settings.tls.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        // A poisoned lock only means a reload panicked: the settings are whole.
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The settings to apply now.
    pub fn current(&self) -> Arc<WebSettings> {
        let mut c = self.lock();
        let Some(path) = &self.path else {
            return Arc::clone(&c.settings);
        };
        if c.checked.elapsed() < RECHECK_EVERY {
            return Arc::clone(&c.settings);
        }
        c.checked = Instant::now();
        let now = stamp(&c.files);
        if now == c.stamp {
            return Arc::clone(&c.settings);
        }
        c.stamp = now;
        match load(path) {
            // The listener was announced as http or https: a reload must not switch it.
            Ok((settings, _)) if settings.tls.is_some() != c.settings.tls.is_some() => {
                eprintln!(
                    "sirqtop: web config {}: turning TLS on or off needs a restart; \
                     keeping the previous settings",
                    path.display()
                )
            }
            Ok((settings, files)) => {
                eprintln!("sirqtop: web config {}: reloaded", path.display());
                c.settings = Arc::new(settings);
                c.stamp = stamp(&files);
                c.files = files;
            }
            Err(e) => eprintln!("sirqtop: {e}; keeping the previous settings"),
        }
        Arc::clone(&c.settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    fn problem(body: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "web.yml", body);
        match WebConfig::open(Some(&p)) {
            Ok(_) => panic!("accepted: {body}"),
            Err(e) => {
                let s = e.to_string();
                assert!(
                    s.starts_with(&format!("web config {}: ", p.display())),
                    "{s}"
                );
                assert!(!s.contains('\n'), "one line: {s}");
                s
            }
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(problem("basic_auth_user:\n  a: b\n").contains("basic_auth_user"));
        assert!(problem("tls_server_config:\n  cert: x\n").contains("cert"));
        assert!(problem("http_server_config:\n  headers:\n    Server: x\n").contains("Server"));
        assert!(
            problem("http_server_config:\n  headers:\n    X-Frame-Options: allow\n")
                .contains("invalid value")
        );
        assert!(problem("basic_auth_users:\n  alice: notahash\n").contains("alice"));
        assert!(problem("tls_server_config: [1, 2\n").len() > 20);
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yml");
        let e = WebConfig::open(Some(&missing)).err().unwrap().to_string();
        assert!(e.contains("nope.yml") && e.contains("No such file"), "{e}");
    }

    #[test]
    fn headers_users_and_an_empty_file_load() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "empty.yml", "");
        let c = WebConfig::open(Some(&empty)).unwrap();
        assert!(!c.is_tls() && c.current().users.is_none());
        let hash = bcrypt::hash("secret", 4).unwrap();
        let p = write(
            dir.path(),
            "web.yml",
            &format!(
                "http_server_config:\n  http2: false\n  headers:\n    \
                 X-Frame-Options: deny\nbasic_auth_users:\n  alice: {hash}\n"
            ),
        );
        let c = WebConfig::open(Some(&p)).unwrap();
        let s = c.current();
        assert_eq!(s.headers.len(), 1);
        assert_eq!(s.headers[0].0.as_str(), "x-frame-options");
        assert!(s.users.as_ref().unwrap().contains("alice"));
    }

    /// The example the DaemonSet's Secret is made from has only keys sirqtop knows, and
    /// refuses to start until its placeholder hash is replaced.
    #[test]
    fn the_shipped_example_parses_and_wants_a_real_hash() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/web-config.yml");
        let text = std::fs::read_to_string(&p).unwrap();
        let f: FileFormat = serde_saphyr::from_str(&text).unwrap();
        let tls = f.tls_server_config.unwrap();
        assert_eq!(tls.cert_file.as_deref(), Some("tls.crt"));
        assert!(f.basic_auth_users.unwrap().contains_key("prometheus"));
        let dir = tempfile::tempdir().unwrap();
        let copy = write(dir.path(), "web-config.yml", &text);
        write(dir.path(), "tls.crt", "");
        let e = WebConfig::open(Some(&copy)).err().unwrap().to_string();
        assert!(e.contains("web-config.yml"), "{e}");
    }
}
