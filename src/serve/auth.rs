//! Basic authentication against the web config's `basic_auth_users` (bcrypt hashes, as
//! `htpasswd -nB` writes them). An unknown user is checked against a dummy hash of the
//! same cost, so that it takes as long as a wrong password. A verified password is
//! remembered (by digest) so that a scraper pays bcrypt once, not every scrape.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use base64::Engine as _;

/// Verified (user, password digest) pairs kept at most; forgotten all at once beyond.
const VERIFIED_MAX: usize = 256;

#[derive(Debug)]
pub struct Users {
    hashes: BTreeMap<String, String>,
    /// Compared against for unknown users: same cost as the real ones.
    dummy: String,
    verified: Mutex<HashSet<(String, [u8; 32])>>,
}

fn digest(password: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, password);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl Users {
    /// Checks every hash; the error names the user whose hash is bad.
    pub fn new(users: &BTreeMap<String, String>) -> Result<Users, String> {
        let mut cost = bcrypt::DEFAULT_COST;
        for (user, hash) in users {
            let parts: bcrypt::HashParts = hash.parse().map_err(|e| {
                format!("basic_auth_users: {user}: not a bcrypt hash ({e}); make one with htpasswd -nBC 10 {user}")
            })?;
            cost = parts.get_cost();
        }
        let dummy = bcrypt::hash("sirqtop: no such user", cost)
            .map_err(|e| format!("basic_auth_users: {e}"))?;
        Ok(Users {
            hashes: users.clone(),
            dummy,
            verified: Mutex::new(HashSet::new()),
        })
    }

    pub fn contains(&self, user: &str) -> bool {
        self.hashes.contains_key(user)
    }

    /// Whether this `Authorization` value was verified before (no bcrypt needed).
    pub fn remembered(&self, authorization: Option<&[u8]>) -> bool {
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let key = (user, digest(password.as_bytes()));
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&key)
    }

    /// Whether an `Authorization` header value names a user and the right password.
    /// Costs a bcrypt verification unless this pair was verified before: call it off the
    /// serving thread.
    pub fn check(&self, authorization: Option<&[u8]>) -> bool {
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let key = (user.clone(), digest(password.as_bytes()));
        let verified = || self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified().contains(&key) {
            return true;
        }
        let (hash, known) = match self.hashes.get(&user) {
            Some(h) => (h.as_str(), true),
            None => (self.dummy.as_str(), false),
        };
        let ok = bcrypt::verify(password.as_bytes(), hash).unwrap_or(false) && known;
        if ok {
            let mut v = verified();
            if v.len() >= VERIFIED_MAX {
                v.clear();
            }
            v.insert(key);
        }
        ok
    }
}

/// `Basic base64(user:password)` → (user, password).
fn basic_credentials(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> Vec<u8> {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {token}").into_bytes()
    }

    #[test]
    fn right_wrong_and_unknown() {
        let mut m = BTreeMap::new();
        m.insert("alice".to_string(), bcrypt::hash("s3cret", 4).unwrap());
        let u = Users::new(&m).unwrap();
        assert!(u.check(Some(&header("alice", "s3cret"))));
        assert!(u.remembered(Some(&header("alice", "s3cret"))));
        assert!(!u.remembered(Some(&header("alice", "wrong"))));
        assert!(!u.check(Some(&header("alice", "wrong"))));
        assert!(!u.check(Some(&header("bob", "s3cret"))));
        assert!(!u.check(Some(b"Bearer xyz")));
        assert!(!u.check(Some(b"Basic !!!")));
        assert!(!u.check(None));
        assert!(u.dummy.starts_with("$2b$04$"), "dummy has the users' cost");
        m.insert("bob".to_string(), "$2y$10$short".to_string());
        assert!(Users::new(&m).unwrap_err().contains("bob"));
    }
}
