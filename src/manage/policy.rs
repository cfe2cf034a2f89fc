//! App-V's provider policy as a pipeline of steps: authentication,
//! authorisation, usage metering and licensing. Each step is a trait; the
//! [`Pipeline`] runs them in order, and the built-in steps use the store.
//! An LDAP or OIDC login, an extra access rule or an outside meter is one
//! more step, with no change elsewhere:
//!
//! ```
//! use std::sync::Arc;
//! use sft::manage::{Authorise, Decision, Manager, Pipeline, User};
//!
//! /// No launches on a maintenance night.
//! struct Maintenance;
//! impl Authorise for Maintenance {
//!     fn authorise(&self, _: &Manager, _: &User, package: &str) -> sft::Result<Decision> {
//!         Ok(if package == "Payroll" { Decision::Deny("payroll is closed tonight".into()) } else { Decision::Abstain })
//!     }
//! }
//! let mut p = Pipeline::default();
//! p.authorisers.push(Arc::new(Maintenance));
//! ```

use std::sync::Arc;

use super::Manager;
use super::licence::Lease;
use crate::error::{Error, ManageProblem};
use crate::publish::UsageReport;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user's id in the store.
    pub id: i64,
    /// The user's name.
    pub name: String,
    /// An administrator.
    pub admin: bool,
}

/// What a client presented.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// HTTP Basic.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// A bearer token.
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Credentials {
    /// Credentials from an `Authorization` header value; `None` for
    /// another scheme or a malformed value.
    ///
    /// ```
    /// use sft::manage::Credentials;
    /// let c = Credentials::from_header(b"Basic YWxpY2U6cHc=").unwrap();
    /// assert_eq!(c, Credentials::Basic { user: "alice".into(), password: "pw".into() });
    /// assert!(!format!("{c:?}").contains("pw"));
    /// ```
    pub fn from_header(value: &[u8]) -> Option<Credentials> {
        use base64::Engine as _;
        let v = std::str::from_utf8(value).ok()?.trim();
        let (scheme, rest) = v.split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let s = String::from_utf8(raw).ok()?;
            let (user, password) = s.split_once(':')?;
            Some(Credentials::Basic {
                user: user.to_owned(),
                password: password.to_owned(),
            })
        } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            Some(Credentials::Bearer(rest.to_owned()))
        } else {
            None
        }
    }
}

/// An authorisation step's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, as far as this step is concerned.
    Allow,
    /// Refused, with the reason shown to the user.
    Deny(String),
    /// This step has no opinion.
    Abstain,
}

/// An authentication step: who is this?
pub trait Authenticate: Send + Sync {
    /// The user `credentials` prove, `Ok(None)` if this step does not
    /// handle them (the next step is asked).
    ///
    /// # Errors
    /// [`ManageProblem::Unauthenticated`] for credentials this step
    /// handles and refuses.
    fn authenticate(
        &self,
        manager: &Manager,
        credentials: &Credentials,
        peer: &str,
    ) -> Result<Option<User>, Error>;
}

/// An authorisation step: may this user use this package? Every step is
/// asked; any `Deny` refuses; at least one `Allow` is needed.
pub trait Authorise: Send + Sync {
    /// This step's decision.
    ///
    /// # Errors
    /// Database failures.
    fn authorise(&self, manager: &Manager, user: &User, package: &str) -> Result<Decision, Error>;

    /// Whether this is the store's own group-grant step (a refresh then
    /// lists the user's packages in one query instead of asking about
    /// each). Other steps keep the default, `false`.
    fn is_store_grants(&self) -> bool {
        false
    }
}

/// A usage metering step.
pub trait Meter: Send + Sync {
    /// A client's usage report arrived from `user`.
    ///
    /// # Errors
    /// Database failures.
    fn report(&self, manager: &Manager, user: &User, report: &UsageReport) -> Result<(), Error>;
}

/// A licensing step.
pub trait License: Send + Sync {
    /// `user` asks to launch `package` on `client`: a lease, or
    /// [`ManageProblem::NoLicence`].
    ///
    /// # Errors
    /// No licence free; unknown package.
    fn acquire(
        &self,
        manager: &Manager,
        user: &User,
        package: &str,
        client: &str,
    ) -> Result<Lease, Error>;
    /// Keep a lease alive.
    ///
    /// # Errors
    /// The lease is unknown or expired.
    fn renew(&self, manager: &Manager, user: &User, lease: &str) -> Result<Lease, Error>;
    /// The launch ended.
    ///
    /// # Errors
    /// Database failures.
    fn release(&self, manager: &Manager, user: &User, lease: &str) -> Result<(), Error>;
}

/// Passwords and tokens in the store ([`Manager::authenticate`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreAuthenticator;

impl Authenticate for StoreAuthenticator {
    fn authenticate(
        &self,
        manager: &Manager,
        credentials: &Credentials,
        peer: &str,
    ) -> Result<Option<User>, Error> {
        manager.authenticate(credentials, peer).map(Some)
    }
}

/// Group grants in the store.
#[derive(Debug, Clone, Copy, Default)]
struct GrantAuthoriser;

impl Authorise for GrantAuthoriser {
    fn authorise(&self, manager: &Manager, user: &User, package: &str) -> Result<Decision, Error> {
        Ok(if manager.is_entitled(user.id, package)? {
            Decision::Allow
        } else {
            Decision::Deny(format!("`{}` is not entitled to `{package}`", user.name))
        })
    }

    fn is_store_grants(&self) -> bool {
        true
    }
}

/// Usage reports kept in the store.
#[derive(Debug, Clone, Copy, Default)]
struct StoreMeter;

impl Meter for StoreMeter {
    fn report(&self, manager: &Manager, user: &User, report: &UsageReport) -> Result<(), Error> {
        manager.record_report(&user.name, report)
    }
}

/// Licences and leases in the store.
#[derive(Debug, Clone, Copy, Default)]
struct StoreLicensing;

impl License for StoreLicensing {
    fn acquire(
        &self,
        manager: &Manager,
        user: &User,
        package: &str,
        client: &str,
    ) -> Result<Lease, Error> {
        manager.acquire_lease(user, package, client)
    }
    fn renew(&self, manager: &Manager, user: &User, lease: &str) -> Result<Lease, Error> {
        manager.renew_lease(user, lease)
    }
    fn release(&self, manager: &Manager, user: &User, lease: &str) -> Result<(), Error> {
        manager.release_lease(user, lease)
    }
}

/// The provider policy: the steps a request goes through.
#[derive(Clone)]
pub struct Pipeline {
    /// Tried in order; the first that handles the credentials decides.
    pub authenticators: Vec<Arc<dyn Authenticate>>,
    /// All asked; any deny refuses.
    pub authorisers: Vec<Arc<dyn Authorise>>,
    /// All told.
    pub meters: Vec<Arc<dyn Meter>>,
    /// The licensing step.
    pub licensing: Arc<dyn License>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("authenticators", &self.authenticators.len())
            .field("authorisers", &self.authorisers.len())
            .field("meters", &self.meters.len())
            .finish_non_exhaustive()
    }
}

impl Default for Pipeline {
    /// The store's own steps: passwords and tokens, group grants, stored
    /// usage, stored licences.
    fn default() -> Self {
        Pipeline {
            authenticators: vec![Arc::new(StoreAuthenticator)],
            authorisers: vec![Arc::new(GrantAuthoriser)],
            meters: vec![Arc::new(StoreMeter)],
            licensing: Arc::new(StoreLicensing),
        }
    }
}

impl Pipeline {
    /// Run the authentication steps.
    ///
    /// # Errors
    /// [`ManageProblem::Unauthenticated`] if a step refuses or none
    /// handles the credentials.
    pub fn authenticate(&self, m: &Manager, c: &Credentials, peer: &str) -> Result<User, Error> {
        for a in &self.authenticators {
            if let Some(u) = a.authenticate(m, c, peer)? {
                return Ok(u);
            }
        }
        Err(Error::manage(
            ManageProblem::Unauthenticated,
            "no authentication step accepts these credentials",
        ))
    }

    /// Run the authorisation steps for `package`.
    ///
    /// # Errors
    /// [`ManageProblem::Denied`] with the denying step's reason.
    pub fn authorise(&self, m: &Manager, user: &User, package: &str) -> Result<(), Error> {
        let mut allowed = false;
        for a in &self.authorisers {
            match a.authorise(m, user, package)? {
                Decision::Allow => allowed = true,
                Decision::Deny(why) => return Err(Error::manage(ManageProblem::Denied, why)),
                Decision::Abstain => {}
            }
        }
        if allowed {
            Ok(())
        } else {
            Err(Error::manage(
                ManageProblem::Denied,
                format!("`{}` is not entitled to `{package}`", user.name),
            ))
        }
    }

    /// Whether the built-in grants are the only authorisation step (the
    /// refresh answer then comes from one query).
    pub(crate) fn grants_only(&self) -> bool {
        !self.authorisers.is_empty() && self.authorisers.iter().all(|a| a.is_store_grants())
    }

    /// Tell every meter about a report.
    ///
    /// # Errors
    /// The first meter's failure.
    pub fn report(&self, m: &Manager, user: &User, report: &UsageReport) -> Result<(), Error> {
        for meter in &self.meters {
            meter.report(m, user, report)?;
        }
        Ok(())
    }
}
