//! `basic_auth_users`: the configured users and their bcrypt hashes, the check of an
//! `Authorization: Basic` header against them (refusing passwords longer than bcrypt reads),
//! and the cache of verifications that succeeded.
//! Also what makes a configured hash acceptable (`check_bcrypt`). Answering 401 is the
//! middleware's business (`serve`); locating a bad hash in the file is `convert`'s.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, PoisonError};

use axum::http::HeaderValue;
use base64::Engine as _;

/// Successful basic-auth verifications remembered at most; the cache is emptied beyond.
const VERIFIED_CACHE_MAX: usize = 1024;
/// The longest password bcrypt reads in full: it ignores every byte beyond, so a longer
/// password would match with any ending and is refused instead.
const MAX_PASSWORD_BYTES: usize = 72;

/// Users and their bcrypt hashes, plus the verifications that succeeded.
pub(super) struct BasicAuth {
    users: HashMap<String, Secret>,
    /// SHA-256 of `user:password` for credentials that verified: bcrypt costs ~70 ms at cost
    /// 10, too much to pay on every scrape.
    pub(super) verified: Mutex<HashSet<[u8; 32]>>,
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut users: Vec<&str> = self.users.keys().map(String::as_str).collect();
        users.sort_unstable();
        f.debug_struct("BasicAuth")
            .field("users", &users)
            .finish_non_exhaustive()
    }
}

/// A secret string (bcrypt hash): `Debug` shows nothing of it.
#[derive(Clone)]
pub(super) struct Secret(pub(super) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl BasicAuth {
    /// The users (names without `:`, hashes that passed `check_bcrypt`); `None` when there are
    /// none, so that an empty `basic_auth_users` guards nothing, as in the toolkit.
    pub(super) fn new(users: HashMap<String, Secret>) -> Option<BasicAuth> {
        (!users.is_empty()).then(|| BasicAuth {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// True when `header` carries the credentials of a configured user. A password longer
    /// than `MAX_PASSWORD_BYTES` is never a configured user's.
    pub(super) async fn check(&self, header: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = header.and_then(decode_basic) else {
            return false;
        };
        if password.len() > MAX_PASSWORD_BYTES {
            return false;
        }
        let key = cache_key(&user, &password);
        if self
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&key)
        {
            return true;
        }
        // An unknown user costs the same as a wrong password: verify against some configured
        // hash and discard the answer, so that timing does not reveal which users exist.
        let (hash, known) = match self.users.get(&user) {
            Some(h) => (h.clone(), true),
            None => match self.users.values().next() {
                Some(h) => (h.clone(), false),
                None => return false,
            },
        };
        let verified = tokio::task::spawn_blocking(move || {
            bcrypt::verify(&password, &hash.0).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if verified && known {
            let mut cache = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
            if cache.len() >= VERIFIED_CACHE_MAX {
                cache.clear();
            }
            cache.insert(key);
        }
        verified && known
    }
}

/// Why `hash` is not a usable bcrypt hash. The reason never quotes the hash.
pub(super) fn check_bcrypt(hash: &str) -> Result<(), String> {
    let parts: bcrypt::HashParts = hash.parse().map_err(|e| match e {
        bcrypt::BcryptError::InvalidHash(why) => why.to_string(),
        _ => "malformed".to_string(),
    })?;
    let cost = parts.get_cost();
    if !(4..=31).contains(&cost) {
        return Err(format!("cost {cost} is outside 4..31"));
    }
    Ok(())
}

/// `Basic base64(user:password)` → (user, password); `None` when malformed.
fn decode_basic(value: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let value = value.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = std::str::from_utf8(decoded.get(..colon)?).ok()?.to_string();
    let password = decoded.get(colon + 1..)?.to_vec();
    Some((user, password))
}

/// User names contain no `:`, so `user:password` is unambiguous.
fn cache_key(user: &str, password: &[u8]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(user.as_bytes());
    ctx.update(b":");
    ctx.update(password);
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{dir_with_pki, errors};
    use super::*;

    #[test]
    fn bad_bcrypt_hash_is_refused_without_echoing_it() {
        let dir = dir_with_pki();
        let e = errors(&dir, "basic_auth_users:\n  alice: not-a-hash-s3cr3t\n");
        assert_eq!(
            e,
            vec![
                "DIR/web.yml:2:10: basic_auth_users.alice: not a bcrypt hash (the hash format is malformed; expected 60 ASCII bytes); make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"
            ]
        );
        assert!(!e[0].contains("s3cr3t"));
    }

    #[tokio::test]
    async fn password_longer_than_72_bytes_is_rejected() {
        let password = "x".repeat(72);
        let hash = bcrypt::hash(&password, 4).expect("hash");
        let users = HashMap::from([("alice".to_string(), Secret(hash))]);
        let auth = BasicAuth::new(users).expect("one user");
        let header = |p: &str| {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("alice:{p}"));
            HeaderValue::from_str(&format!("Basic {token}")).expect("header")
        };
        let longer = format!("{password}anything");
        assert!(
            !auth.check(Some(&header(&longer))).await,
            "a password matching only in its first 72 bytes was accepted"
        );
        assert!(
            auth.check(Some(&header(&password))).await,
            "the 72-byte password itself was refused"
        );
        assert!(
            !auth.check(Some(&header(&longer))).await,
            "a longer password was accepted once the 72-byte one was cached"
        );
    }

    #[test]
    fn basic_header_decodes_user_and_password() {
        let v = HeaderValue::from_static("Basic YWxpY2U6cGE6c3M=");
        assert_eq!(
            decode_basic(&v),
            Some(("alice".to_string(), b"pa:ss".to_vec()))
        );
        assert_eq!(decode_basic(&HeaderValue::from_static("Bearer x")), None);
        assert_eq!(decode_basic(&HeaderValue::from_static("Basic !!")), None);
    }
}
