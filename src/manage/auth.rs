//! Passwords (Argon2id, PHC strings), bearer tokens (random, stored as
//! SHA-256), failed-login throttling and the verified-login cache.
//!
//! Argon2id is slow on purpose (tens of milliseconds): a refresh with
//! HTTP Basic would cost that on every request. A login once verified is
//! remembered in memory under a keyed hash of the credentials (never the
//! password itself) until the store's generation changes (a new password
//! bumps it) or five minutes pass.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::admin::text;
use super::db::Val;
use super::policy::{Credentials, User};
use super::{Manager, bump, now_ms};
use crate::error::{Error, ManageProblem};

/// Failed logins allowed per user name in [`FAIL_WINDOW`] before
/// further attempts for that name are refused for that long.
const MAX_FAILURES: u32 = 10;
/// The same per client address (higher: one address may be a whole
/// site behind NAT).
const MAX_ADDRESS_FAILURES: u32 = 100;
const FAIL_WINDOW: Duration = Duration::from_secs(60);
/// How long a verified Basic login is remembered.
const LOGIN_CACHE_TTL: Duration = Duration::from_secs(300);
/// Most remembered logins (the cache is cleared when full).
const LOGIN_CACHE_MAX: usize = 100_000;
/// Longest password accepted (Argon2 takes any length; a bound keeps a
/// hostile one from costing more than a normal one).
const MAX_PASSWORD: usize = 1024;

pub(crate) fn hash_password(password: &str) -> Result<String, Error> {
    if password.is_empty() || password.len() > MAX_PASSWORD {
        return Err(Error::invalid(format!(
            "a password must be 1 to {MAX_PASSWORD} bytes"
        )));
    }
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::invalid(format!("hashing a password: {e}")))
}

/// Check that `hash` is an Argon2 PHC string (`$argon2id$…`).
pub(crate) fn check_hash(user: &str, hash: &str) -> Result<(), Error> {
    match PasswordHash::new(hash) {
        Ok(h) if h.algorithm.as_str().starts_with("argon2") && h.hash.is_some() => Ok(()),
        _ => Err(Error::invalid(format!(
            "user `{}`: the password hash is not an Argon2 PHC string ($argon2id$v=19$…)",
            user.escape_debug()
        ))),
    }
}

/// An Argon2id PHC hash of `password` (what `user import` takes).
///
/// # Errors
/// An empty or over-long password.
pub fn password_hash(password: &str) -> Result<String, Error> {
    hash_password(password)
}

fn verify_password(hash: &str, password: &str) -> bool {
    password.len() <= MAX_PASSWORD
        && PasswordHash::new(hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
}

/// A new random token (`sft_` and 43 base64url characters) and the
/// SHA-256 it is stored as.
fn new_token() -> (String, String) {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    let token = format!(
        "sft_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    );
    let hash = token_hash(&token);
    (token, hash)
}

fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub(crate) fn hex(b: &[u8]) -> String {
    use std::fmt::Write as _;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

struct Window {
    since: Instant,
    failures: u32,
}

struct Cached {
    user: User,
    generation: i64,
    at: Instant,
}

/// In-memory state of one server process.
pub(crate) struct AuthState {
    failures: Mutex<HashMap<String, Window>>,
    /// Argon2 checks running.
    hashing: std::sync::atomic::AtomicUsize,
    logins: Mutex<HashMap<[u8; 32], Cached>>,
    key: [u8; 32],
}

impl Default for AuthState {
    fn default() -> Self {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        AuthState {
            failures: Mutex::new(HashMap::new()),
            hashing: std::sync::atomic::AtomicUsize::new(0),
            logins: Mutex::new(HashMap::new()),
            key,
        }
    }
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState").finish_non_exhaustive()
    }
}

/// A running Argon2 check's slot.
struct Slot<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AuthState {
    /// Seconds to wait if `key` (a user name or address) is throttled.
    fn throttled(&self, key: &str, max: u32) -> Option<u64> {
        let mut f = lock(&self.failures);
        let w = f.get(key)?;
        let age = w.since.elapsed();
        if age >= FAIL_WINDOW {
            f.remove(key);
            return None;
        }
        (w.failures >= max).then(|| (FAIL_WINDOW - age).as_secs().max(1))
    }

    fn failed(&self, key: &str) {
        let mut f = lock(&self.failures);
        if f.len() > LOGIN_CACHE_MAX {
            f.retain(|_, w| w.since.elapsed() < FAIL_WINDOW);
        }
        let w = f.entry(key.to_owned()).or_insert(Window {
            since: Instant::now(),
            failures: 0,
        });
        if w.since.elapsed() >= FAIL_WINDOW {
            *w = Window {
                since: Instant::now(),
                failures: 0,
            };
        }
        w.failures += 1;
    }

    /// Take back one failure of `key` (a login that succeeded).
    fn forgive(&self, key: &str) {
        if let Some(w) = lock(&self.failures).get_mut(key) {
            w.failures = w.failures.saturating_sub(1);
        }
    }

    /// A slot to run one Argon2 check in, if fewer than the machine's
    /// cores (at least 2) are running.
    fn hashing_slot(&self) -> Option<Slot<'_>> {
        let max = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        let n = self
            .hashing
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if n >= max {
            self.hashing
                .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            return None;
        }
        Some(Slot(&self.hashing))
    }

    fn login_key(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update((user.len() as u64).to_le_bytes());
        h.update(user.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }
}

impl Manager {
    /// Check `credentials` from the client at `peer` against the store's
    /// users and tokens: the built-in authentication step of the
    /// [`Pipeline`](super::Pipeline).
    ///
    /// # Errors
    /// `Error::Manage` with [`ManageProblem::Unauthenticated`] for wrong
    /// credentials, an unknown or expired token, or a user name or
    /// address with too many failures in the last minute (the message
    /// then says how long to wait).
    pub fn authenticate(&self, credentials: &Credentials, peer: &str) -> Result<User, Error> {
        let deny = |m: &str| Error::manage(ManageProblem::Unauthenticated, m.to_owned());
        match credentials {
            Credentials::Bearer(token) => {
                if let Some(s) = self.auth.throttled(peer, MAX_ADDRESS_FAILURES) {
                    return Err(deny(&format!("too many failed logins; try again in {s} s")));
                }
                let hash = token_hash(token);
                let row = self.db.read(|t| {
                    t.query_opt(
                        "SELECT u.id, u.name, u.admin FROM tokens k JOIN users u ON u.id = k.user_id WHERE k.hash = $1 AND k.expires_ms > $2",
                        &[hash.into(), now_ms().into()],
                    )
                })?;
                match row {
                    Some(r) => Ok(user_of(&r)),
                    None => {
                        self.auth.failed(peer);
                        Err(deny("unknown or expired token"))
                    }
                }
            }
            Credentials::Basic { user, password } => {
                // A name no user can have: refused before any hashing.
                if super::check_name("user", user).is_err() || password.len() > MAX_PASSWORD {
                    self.auth.failed(peer);
                    return Err(deny("wrong user name or password"));
                }
                let user_key = format!("user:{user}");
                for (k, max) in [
                    (user_key.as_str(), MAX_FAILURES),
                    (peer, MAX_ADDRESS_FAILURES),
                ] {
                    if let Some(s) = self.auth.throttled(k, max) {
                        return Err(deny(&format!("too many failed logins; try again in {s} s")));
                    }
                }
                let generation = self.generation()?;
                let key = self.auth.login_key(user, password);
                if let Some(c) = lock(&self.auth.logins).get(&key)
                    && c.generation == generation
                    && c.at.elapsed() < LOGIN_CACHE_TTL
                {
                    return Ok(c.user.clone());
                }
                let row = self.db.read(|t| {
                    t.query_opt(
                        "SELECT id, name, admin, password_hash FROM users WHERE name = $1",
                        &[user.as_str().into()],
                    )
                })?;
                // Argon2 takes 19 MiB a check: at most a few at once, so a
                // flood of attempts cannot take the server's memory.
                let Some(_slot) = self.auth.hashing_slot() else {
                    return Err(deny("too many logins in progress; try again"));
                };
                // Counted before the check, so concurrent guesses all
                // count; forgiven on success.
                self.auth.failed(&user_key);
                self.auth.failed(peer);
                let ok = match &row {
                    Some(r) => verify_password(&text(r, 3), password),
                    None => {
                        // As slow as a wrong password: no timing hint
                        // that the name does not exist.
                        let _ = verify_password(DUMMY_HASH, password);
                        false
                    }
                };
                match row {
                    Some(r) if ok => {
                        self.auth.forgive(&user_key);
                        self.auth.forgive(peer);
                        let u = user_of(&r);
                        let mut cache = lock(&self.auth.logins);
                        if cache.len() >= LOGIN_CACHE_MAX {
                            cache.clear();
                        }
                        cache.insert(
                            key,
                            Cached {
                                user: u.clone(),
                                generation,
                                at: Instant::now(),
                            },
                        );
                        Ok(u)
                    }
                    Some(_) => {
                        self.log_event("login-failed", user, &format!("from {peer}"));
                        Err(deny("wrong user name or password"))
                    }
                    None => {
                        // Not the name typed: it may be a password typed
                        // in the wrong field.
                        self.log_event(
                            "login-failed",
                            "",
                            &format!("an unknown user name, from {peer}"),
                        );
                        Err(deny("wrong user name or password"))
                    }
                }
            }
        }
    }

    /// A new bearer token for `user`, valid for `ttl`. Only its SHA-256
    /// is stored.
    ///
    /// # Errors
    /// Unknown user.
    pub fn issue_token(&self, user: &str, ttl: Duration) -> Result<String, Error> {
        let (token, hash) = new_token();
        let now = now_ms();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.db.tx(|t| {
            let id = super::admin::user_id(t, user)?;
            t.exec("DELETE FROM tokens WHERE expires_ms <= $1", &[now.into()])?;
            t.exec(
                "INSERT INTO tokens (hash, user_id, created_ms, expires_ms) VALUES ($1, $2, $3, $4)",
                &[hash.into(), id.into(), now.into(), now.saturating_add(ttl_ms).into()],
            )?;
            Ok(())
        })?;
        Ok(token)
    }

    /// End every token of `user`.
    ///
    /// # Errors
    /// Unknown user.
    pub fn revoke_tokens(&self, user: &str) -> Result<(), Error> {
        self.db.tx(|t| {
            let id = super::admin::user_id(t, user)?;
            t.exec("DELETE FROM tokens WHERE user_id = $1", &[id.into()])?;
            bump(t)
        })
    }

    /// Record an event for the errors report (never a secret).
    pub(crate) fn log_event(&self, kind: &str, user: &str, detail: &str) {
        let _ = self.db.tx(|t| {
            t.exec(
                "INSERT INTO events (at_ms, kind, user_name, detail) VALUES ($1, $2, $3, $4)",
                &[now_ms().into(), kind.into(), user.into(), detail.into()],
            )
        });
    }
}

fn user_of(r: &[Val]) -> User {
    User {
        id: r.first().and_then(Val::int).unwrap_or(0),
        name: text(r, 1),
        admin: r.get(2).and_then(Val::int) == Some(1),
    }
}

/// A valid Argon2id hash of a random password, verified against when a
/// user does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$V3m0LQ0uFzAeBHbZkWNYhmc9+gy0NDNVY6aNxQ6L0xA";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(!h.contains("s3cret"));
        assert!(verify_password(&h, "s3cret"));
        assert!(!verify_password(&h, "s3cre"));
        assert!(hash_password("").is_err());
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 43);
        assert_eq!(ha, token_hash(&a));
        assert!(!ha.contains(&a));
    }

    #[test]
    fn throttling_starts_after_the_limit() {
        let s = AuthState::default();
        for _ in 0..MAX_FAILURES - 1 {
            s.failed("x");
        }
        assert_eq!(s.throttled("x", MAX_FAILURES), None);
        s.failed("x");
        assert!(s.throttled("x", MAX_FAILURES).is_some());
        assert_eq!(s.throttled("x", MAX_ADDRESS_FAILURES), None);
        assert_eq!(s.throttled("y", MAX_FAILURES), None);
    }
}
