//! Licences: a launch takes a lease; concurrent licences count the
//! unexpired leases of a package, named licences need the user to hold
//! one. A lease ends when the client releases it at shutdown or when it
//! is not renewed in time (a client that crashed or went offline gives
//! its licence back by itself).
//!
//! Taking a lease is one transaction that locks the package's row first
//! (`SELECT … FOR UPDATE` on PostgreSQL; SQLite's write lock), so two
//! servers on one database never hand out the same last licence.

use super::admin::{LicenceKind, licence_kind, text, user_id};
use super::auth::hex;
use super::db::{Dialect, Val};
use super::policy::User;
use super::{Manager, now_ms};
use crate::error::{Error, ManageProblem};

/// A licence lease for one launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease's id (random; renew and release name it).
    pub id: String,
    /// The package.
    pub package: String,
    /// When it ends unless renewed (ms since the epoch).
    pub expires_ms: i64,
}

impl Manager {
    /// Whether `user_id` is entitled to `package` by a group grant.
    ///
    /// # Errors
    /// Database failures.
    pub fn is_entitled(&self, user_id: i64, package: &str) -> Result<bool, Error> {
        self.db.read(|t| {
            Ok(t.query_opt(
                "SELECT 1 FROM grants gr JOIN members m ON m.group_id = gr.group_id JOIN packages p ON p.id = gr.package_id WHERE m.user_id = $1 AND p.name = $2",
                &[user_id.into(), package.into()],
            )?
            .is_some())
        })
    }

    /// Take a lease of `package` for `user` on `client` (the
    /// [`Pipeline`](super::Pipeline)'s built-in licensing step; call
    /// [`Pipeline::authorise`](super::Pipeline::authorise) first).
    ///
    /// # Errors
    /// [`ManageProblem::NoLicence`] when every concurrent licence is in
    /// use or the user holds no named licence, naming the package and
    /// the count; unknown package.
    pub fn acquire_lease(&self, user: &User, package: &str, client: &str) -> Result<Lease, Error> {
        let secs = i64::try_from(self.lease_seconds()?).unwrap_or(300);
        let now = now_ms();
        let mut id = [0u8; 16];
        argon2::password_hash::rand_core::RngCore::fill_bytes(
            &mut argon2::password_hash::rand_core::OsRng,
            &mut id,
        );
        let id = hex(&id);
        let client: String = client.chars().take(256).collect();
        let r = self.db.tx(|t| {
            let lock = if t.dialect() == Dialect::Postgres {
                " FOR UPDATE"
            } else {
                ""
            };
            let row = t
                .query_opt(
                    &format!("SELECT id, licence, licence_count FROM packages WHERE name = $1{lock}"),
                    &[package.into()],
                )?
                .ok_or_else(|| super::unknown("package", package))?;
            let pid = row.first().and_then(Val::int).unwrap_or(0);
            let kind = licence_kind(&text(&row, 1), row.get(2).and_then(Val::int).unwrap_or(0));
            t.exec(
                "DELETE FROM leases WHERE package_id = $1 AND expires_ms <= $2",
                &[pid.into(), now.into()],
            )?;
            match kind {
                LicenceKind::Unlimited => {}
                LicenceKind::Concurrent(n) => {
                    let used = t.query_int(
                        "SELECT COUNT(*) FROM leases WHERE package_id = $1",
                        &[pid.into()],
                    )?;
                    if used >= i64::from(n) {
                        return Err(Error::manage(
                            ManageProblem::NoLicence,
                            format!(
                                "all {n} concurrent licences of `{package}` are in use; try again when another user closes it"
                            ),
                        ));
                    }
                }
                LicenceKind::Named => {
                    let uid = user_id(t, &user.name)?;
                    if t.query_opt(
                        "SELECT 1 FROM named_licences WHERE package_id = $1 AND user_id = $2",
                        &[pid.into(), uid.into()],
                    )?
                    .is_none()
                    {
                        return Err(Error::manage(
                            ManageProblem::NoLicence,
                            format!("`{}` holds no named licence of `{package}`", user.name),
                        ));
                    }
                }
            }
            t.exec(
                "INSERT INTO leases (id, package_id, user_id, client, started_ms, expires_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    id.as_str().into(),
                    pid.into(),
                    user.id.into(),
                    client.as_str().into(),
                    now.into(),
                    (now + secs * 1000).into(),
                ],
            )?;
            Ok(Lease {
                id: id.clone(),
                package: package.to_owned(),
                expires_ms: now + secs * 1000,
            })
        });
        if let Err(e) = &r
            && e.manage_problem() == Some(ManageProblem::NoLicence)
        {
            self.log_event("no-licence", &user.name, &e.to_string());
        }
        r
    }

    /// Renew `user`'s lease `lease` for another lease period.
    ///
    /// # Errors
    /// [`ManageProblem::Unknown`] for a lease that is not the user's or
    /// has expired (the client must acquire a new one).
    pub fn renew_lease(&self, user: &User, lease: &str) -> Result<Lease, Error> {
        let secs = i64::try_from(self.lease_seconds()?).unwrap_or(300);
        let now = now_ms();
        self.db.tx(|t| {
            let row = t
                .query_opt(
                    "SELECT p.name FROM leases l JOIN packages p ON p.id = l.package_id WHERE l.id = $1 AND l.user_id = $2 AND l.expires_ms > $3",
                    &[lease.into(), user.id.into(), now.into()],
                )?
                .ok_or_else(|| {
                    Error::manage(ManageProblem::Unknown, "no such lease, or it has expired")
                })?;
            t.exec(
                "UPDATE leases SET expires_ms = $1 WHERE id = $2",
                &[(now + secs * 1000).into(), lease.into()],
            )?;
            Ok(Lease {
                id: lease.to_owned(),
                package: text(&row, 0),
                expires_ms: now + secs * 1000,
            })
        })
    }

    /// Give `user`'s lease back (no error if it already ended).
    ///
    /// # Errors
    /// Database failures.
    pub fn release_lease(&self, user: &User, lease: &str) -> Result<(), Error> {
        self.db.tx(|t| {
            t.exec(
                "DELETE FROM leases WHERE id = $1 AND user_id = $2",
                &[lease.into(), user.id.into()],
            )?;
            Ok(())
        })
    }

    /// Leases in use now, per package name.
    ///
    /// # Errors
    /// Database failures.
    pub fn leases_in_use(&self) -> Result<Vec<(String, u64)>, Error> {
        self.db.read(|t| {
            Ok(t.query(
                "SELECT p.name, COUNT(*) FROM leases l JOIN packages p ON p.id = l.package_id WHERE l.expires_ms > $1 GROUP BY p.name ORDER BY p.name",
                &[now_ms().into()],
            )?
            .into_iter()
            .map(|r| (text(&r, 0), r.get(1).and_then(Val::int).unwrap_or(0).max(0) as u64))
            .collect())
        })
    }
}
