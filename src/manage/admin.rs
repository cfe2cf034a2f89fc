//! Administration: users, groups, membership, packages, grants, licences
//! and policy. Every change runs in one transaction and bumps the
//! publication generation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::db::{Sql, Val};
use super::{Manager, auth, bump, check_name, now_ms, unknown};
use crate::error::{Error, ManageProblem};
use crate::publish::{Manifest, Osd, RefreshPolicy, expand_vars, validate_icon};

/// Largest manifest or OSD taken on import.
const MAX_DESCRIPTOR: u64 = 4 << 20;

/// A user, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The name.
    pub name: String,
    /// An administrator (the admin API and console).
    pub admin: bool,
    /// The groups the user is in.
    pub groups: Vec<String>,
}

/// A group, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The name.
    pub name: String,
    /// Its members.
    pub members: Vec<String>,
    /// The packages it is granted.
    pub packages: Vec<String>,
}

/// A package's licence (App-V's licence groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenceKind {
    /// Anyone entitled may launch.
    Unlimited,
    /// At most this many launches at once.
    Concurrent(u32),
    /// Only users holding a named licence
    /// ([`Manager::assign_licence`]).
    Named,
}

impl std::fmt::Display for LicenceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LicenceKind::Unlimited => f.write_str("unlimited"),
            LicenceKind::Concurrent(n) => write!(f, "concurrent {n}"),
            LicenceKind::Named => f.write_str("named"),
        }
    }
}

/// A package, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    /// Its name, as grants use it.
    pub name: String,
    /// The package GUID.
    pub guid: String,
    /// The current version's GUID.
    pub version_guid: String,
    /// The current version number.
    pub version: String,
    /// The SFT's path under the content folder.
    pub sft_file: String,
    /// The SFT's size in bytes.
    pub size: u64,
    /// The licence.
    pub licence: LicenceKind,
    /// The groups granted it.
    pub groups: Vec<String>,
    /// The applications its manifest lists.
    pub apps: Vec<String>,
}

/// How [`Manager::import_package`] reads a package.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The package's name (default: the manifest's `PACKAGE NAME`, else
    /// its GUID).
    pub name: Option<String>,
    /// The SFT (default: the file the manifest's `PACKAGE HREF` names,
    /// beside the manifest; or the one inside a stand-alone bundle).
    pub sft: Option<PathBuf>,
}

impl Manager {
    // ------------------------------------------------------------ users

    /// Add a user with `password` (stored as an Argon2id hash).
    ///
    /// # Errors
    /// `Error::Manage` [`ManageProblem::Exists`] for a taken name;
    /// [`Error::InvalidInput`] for a bad name or an empty password.
    pub fn add_user(&self, name: &str, password: &str, admin: bool) -> Result<(), Error> {
        check_user_name(name)?;
        let hash = auth::hash_password(password)?;
        self.db.tx(|t| {
            if t.query_opt("SELECT id FROM users WHERE name = $1", &[name.into()])?
                .is_some()
            {
                return Err(exists("user", name));
            }
            t.exec(
                "INSERT INTO users (name, password_hash, admin, created_ms) VALUES ($1, $2, $3, $4)",
                &[name.into(), hash.into(), i64::from(admin).into(), now_ms().into()],
            )?;
            bump(t)
        })
    }

    /// Add users with existing Argon2 password hashes (PHC strings, as
    /// `user add` stores them): moving users from another system, or
    /// many at once, without their passwords. One transaction: all or
    /// none. Returns how many were added.
    ///
    /// # Errors
    /// A bad name, a hash that is not an Argon2 PHC string, a name
    /// listed twice or already taken: nothing is added.
    pub fn import_users(&self, users: &[(String, String)]) -> Result<usize, Error> {
        for (name, hash) in users {
            check_user_name(name)?;
            auth::check_hash(name, hash)?;
        }
        let now = now_ms();
        self.db.tx(|t| {
            for (name, hash) in users {
                if t.query_opt("SELECT id FROM users WHERE name = $1", &[name.into()])?
                    .is_some()
                {
                    return Err(exists("user", name));
                }
                t.exec(
                    "INSERT INTO users (name, password_hash, admin, created_ms) VALUES ($1, $2, 0, $3)",
                    &[name.into(), hash.into(), now.into()],
                )?;
            }
            bump(t)?;
            Ok(users.len())
        })
    }

    /// Set a user's password; the user's tokens, console sessions and
    /// cached logins end.
    ///
    /// # Errors
    /// As [`Manager::add_user`]; unknown user.
    pub fn set_password(&self, name: &str, password: &str) -> Result<(), Error> {
        let hash = auth::hash_password(password)?;
        self.db.tx(|t| {
            let id = user_id(t, name)?;
            t.exec(
                "UPDATE users SET password_hash = $1 WHERE id = $2",
                &[hash.into(), id.into()],
            )?;
            t.exec("DELETE FROM tokens WHERE user_id = $1", &[id.into()])?;
            t.exec("DELETE FROM sessions WHERE user_id = $1", &[id.into()])?;
            bump(t)
        })
    }

    /// Make a user an administrator, or not.
    ///
    /// # Errors
    /// Unknown user.
    pub fn set_admin(&self, name: &str, admin: bool) -> Result<(), Error> {
        self.db.tx(|t| {
            let id = user_id(t, name)?;
            t.exec(
                "UPDATE users SET admin = $1 WHERE id = $2",
                &[i64::from(admin).into(), id.into()],
            )?;
            bump(t)
        })
    }

    /// Delete a user (memberships, tokens, named licences and leases go
    /// with it; usage history stays).
    ///
    /// # Errors
    /// Unknown user.
    pub fn delete_user(&self, name: &str) -> Result<(), Error> {
        self.db.tx(|t| {
            let id = user_id(t, name)?;
            for table in ["members", "tokens", "named_licences", "leases", "sessions"] {
                t.exec(
                    &format!("DELETE FROM {table} WHERE user_id = $1"),
                    &[id.into()],
                )?;
            }
            t.exec("DELETE FROM users WHERE id = $1", &[id.into()])?;
            bump(t)
        })
    }

    /// Every user, by name.
    pub fn users(&self) -> Result<Vec<UserInfo>, Error> {
        self.db.read(|t| {
            let rows = t.query("SELECT id, name, admin FROM users ORDER BY name", &[])?;
            let memberships = t.query(
                "SELECT m.user_id, g.name FROM members m JOIN groups_ g ON g.id = m.group_id ORDER BY g.name",
                &[],
            )?;
            let mut by_user: BTreeMap<i64, Vec<String>> = BTreeMap::new();
            for r in memberships {
                let mut r = r.into_iter();
                let (Some(u), Some(g)) = (r.next().and_then(|v| v.int()), r.next()) else {
                    continue;
                };
                by_user.entry(u).or_default().push(g.into_text().unwrap_or_default());
            }
            Ok(rows
                .into_iter()
                .map(|r| {
                    let id = r.first().and_then(Val::int).unwrap_or(0);
                    UserInfo {
                        name: text(&r, 1),
                        admin: r.get(2).and_then(Val::int) == Some(1),
                        groups: by_user.remove(&id).unwrap_or_default(),
                    }
                })
                .collect())
        })
    }

    /// The groups `user` is in, by name.
    ///
    /// # Errors
    /// Unknown user.
    pub fn groups_of(&self, user: &str) -> Result<Vec<String>, Error> {
        self.db.read(|t| {
            let id = user_id(t, user)?;
            Ok(t.query(
                "SELECT g.name FROM members m JOIN groups_ g ON g.id = m.group_id WHERE m.user_id = $1 ORDER BY g.name",
                &[id.into()],
            )?
            .into_iter()
            .map(|r| text(&r, 0))
            .collect())
        })
    }

    // ----------------------------------------------------------- groups

    /// Add a group.
    ///
    /// # Errors
    /// Taken name; bad name.
    pub fn add_group(&self, name: &str) -> Result<(), Error> {
        check_name("group", name)?;
        self.db.tx(|t| {
            if t.query_opt("SELECT id FROM groups_ WHERE name = $1", &[name.into()])?
                .is_some()
            {
                return Err(exists("group", name));
            }
            t.exec("INSERT INTO groups_ (name) VALUES ($1)", &[name.into()])?;
            bump(t)
        })
    }

    /// Delete a group (its memberships and grants go with it).
    ///
    /// # Errors
    /// Unknown group.
    pub fn delete_group(&self, name: &str) -> Result<(), Error> {
        self.db.tx(|t| {
            let g = group_id(t, name)?;
            t.exec("DELETE FROM members WHERE group_id = $1", &[g.into()])?;
            t.exec("DELETE FROM grants WHERE group_id = $1", &[g.into()])?;
            t.exec("DELETE FROM groups_ WHERE id = $1", &[g.into()])?;
            bump(t)
        })
    }

    /// Put `user` in `group` (no change if already there).
    ///
    /// # Errors
    /// Unknown user or group.
    pub fn add_member(&self, group: &str, user: &str) -> Result<(), Error> {
        self.db.tx(|t| {
            let g = group_id(t, group)?;
            let u = user_id(t, user)?;
            link(t, Link::Members, g, u)?;
            bump(t)
        })
    }

    /// Take `user` out of `group`.
    ///
    /// # Errors
    /// Unknown user, group or membership.
    pub fn remove_member(&self, group: &str, user: &str) -> Result<(), Error> {
        self.db.tx(|t| {
            let g = group_id(t, group)?;
            let u = user_id(t, user)?;
            if !unlink(t, Link::Members, g, u)? {
                return Err(Error::manage(
                    ManageProblem::Unknown,
                    format!("`{user}` is not in group `{group}`"),
                ));
            }
            bump(t)
        })
    }

    /// Every group, by name, with members and grants.
    pub fn groups(&self) -> Result<Vec<GroupInfo>, Error> {
        self.db.read(|t| {
            let groups = t.query("SELECT id, name FROM groups_ ORDER BY name", &[])?;
            let members = t.query(
                "SELECT m.group_id, u.name FROM members m JOIN users u ON u.id = m.user_id ORDER BY u.name",
                &[],
            )?;
            let grants = t.query(
                "SELECT gr.group_id, p.name FROM grants gr JOIN packages p ON p.id = gr.package_id ORDER BY p.name",
                &[],
            )?;
            let collect = |rows: Vec<Vec<Val>>| {
                let mut m: BTreeMap<i64, Vec<String>> = BTreeMap::new();
                for r in rows {
                    m.entry(r.first().and_then(Val::int).unwrap_or(0))
                        .or_default()
                        .push(text(&r, 1));
                }
                m
            };
            let (mut members, mut grants) = (collect(members), collect(grants));
            Ok(groups
                .into_iter()
                .map(|r| {
                    let id = r.first().and_then(Val::int).unwrap_or(0);
                    GroupInfo {
                        name: text(&r, 1),
                        members: members.remove(&id).unwrap_or_default(),
                        packages: grants.remove(&id).unwrap_or_default(),
                    }
                })
                .collect())
        })
    }

    // --------------------------------------------------------- packages

    /// Import a package: its manifest, every OSD and icon the manifest
    /// names (read, checked, and stored in the database), and its SFT
    /// (verified whole, its GUID checked against the manifest's, then
    /// copied under the content folder as `NAME/VERSIONGUID.sft`).
    /// `source` is a manifest, or a `.sftb` bundle. Importing a package
    /// that exists (same name and GUID) publishes its new version:
    /// clients move to it at their next refresh. The old version's SFT
    /// stays, for clients still streaming it.
    ///
    /// # Errors
    /// [`Error::InvalidInput`], [`Error::Io`], [`Error::Bundle`] or a
    /// format or integrity error for bad input (nothing changes);
    /// [`ManageProblem::Exists`] if the name is another package's.
    pub fn import_package(
        &self,
        source: &Path,
        options: &ImportOptions,
    ) -> Result<PackageInfo, Error> {
        let staged = Staged::read(source, options)?;
        let pkg = staged.manifest.package.clone().unwrap_or_default();
        let file = crate::io::package_file::PackageFile::open(&staged.sft)?;
        let meta = file.metadata();
        let sft_guid = meta.package_guid().to_string();
        if let Some(g) = pkg.guid.as_deref()
            && !g
                .trim()
                .trim_matches(['{', '}'])
                .eq_ignore_ascii_case(sft_guid.trim_matches(['{', '}']))
        {
            return Err(Error::invalid(format!(
                "`{}` is package {sft_guid}, but its manifest describes {g}",
                staged.sft.display()
            )));
        }
        let version_guid = meta.version_guid().to_string();
        let version = pkg
            .version
            .clone()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| meta.version().to_string());
        let name = options
            .name
            .clone()
            .or_else(|| pkg.name.clone().filter(|n| !n.trim().is_empty()))
            .unwrap_or_else(|| sft_guid.clone());
        check_name("package", &name)?;
        file.verify()?;
        // The content identity (v1.1) goes into the manifest the server
        // publishes, so clients refuse any other package at its URL.
        let content_id = file
            .prologue()
            .has_block_hashes()
            .then(|| file.prologue().content_id().to_string());
        drop(file);
        let size = std::fs::metadata(&staged.sft)
            .map_err(|e| Error::io(format!("reading `{}`", staged.sft.display()), e))?
            .len();
        // Content path: a safe folder name per package, a file per version.
        let folder: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let folder = format!(
            "{}-{}",
            folder.trim_matches('.'),
            &sft_guid.trim_matches(['{', '}'])[..8]
        );
        let sft_file = format!("{folder}/{}.sft", version_guid.trim_matches(['{', '}']));
        let content = self.content.as_deref().ok_or_else(|| {
            Error::invalid("importing a package needs the content folder (--content DIR)")
        })?;
        let dest = content.join(&sft_file);
        let mut manifest = staged.manifest.clone();
        if let Some(id) = &content_id {
            let p = manifest.package.get_or_insert_with(Default::default);
            match &p.content_id {
                Some(c) if !c.trim().eq_ignore_ascii_case(id) => {
                    return Err(Error::invalid(format!(
                        "the manifest names content {c}, but `{}` is {id}",
                        staged.sft.display()
                    )));
                }
                _ => p.content_id = Some(id.clone()),
            }
        }
        let manifest_xml = manifest.to_xml();
        let now = now_ms();
        // The SFT is in place before the database names it.
        match std::fs::metadata(&dest) {
            Ok(m) if m.len() == size => {}
            Ok(_) => {
                return Err(Error::manage(
                    ManageProblem::Exists,
                    format!(
                        "version {version_guid} of `{name}` is already on this server with other content; pack the new content as a new version"
                    ),
                ));
            }
            Err(_) => copy_atomic(&staged.sft, &dest)?,
        }
        let info = self.db.tx(|t| {
            let existing = t.query_opt(
                "SELECT id, guid FROM packages WHERE name = $1",
                &[name.as_str().into()],
            )?;
            let id = match existing {
                Some(r) => {
                    if text(&r, 1) != sft_guid {
                        return Err(Error::manage(
                            ManageProblem::Exists,
                            format!(
                                "package `{name}` is {} on this server; `{}` is {sft_guid}: import it under another --name",
                                text(&r, 1),
                                source.display()
                            ),
                        ));
                    }
                    let id = r.first().and_then(Val::int).unwrap_or(0);
                    t.exec(
                        "UPDATE packages SET version_guid = $1, version = $2, sft_file = $3, size = $4, manifest = $5, imported_ms = $6 WHERE id = $7",
                        &[
                            version_guid.as_str().into(),
                            version.as_str().into(),
                            sft_file.as_str().into(),
                            (size as i64).into(),
                            manifest_xml.as_str().into(),
                            now.into(),
                            id.into(),
                        ],
                    )?;
                    t.exec("DELETE FROM package_files WHERE package_id = $1", &[id.into()])?;
                    id
                }
                None => {
                    if let Some(other) = t.query_opt(
                        "SELECT name FROM packages WHERE guid = $1",
                        &[sft_guid.as_str().into()],
                    )? {
                        return Err(Error::manage(
                            ManageProblem::Exists,
                            format!(
                                "package {sft_guid} is on this server as `{}`; import its new version under that name",
                                text(&other, 0)
                            ),
                        ));
                    }
                    let r = t.query_opt(
                        "INSERT INTO packages (name, guid, version_guid, version, sft_file, size, manifest, imported_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                        &[
                            name.as_str().into(),
                            sft_guid.as_str().into(),
                            version_guid.as_str().into(),
                            version.as_str().into(),
                            sft_file.as_str().into(),
                            (size as i64).into(),
                            manifest_xml.as_str().into(),
                            now.into(),
                        ],
                    )?;
                    r.and_then(|r| r.first().and_then(Val::int)).unwrap_or(0)
                }
            };
            for (path, data) in &staged.files {
                t.exec(
                    "INSERT INTO package_files (package_id, path, data) VALUES ($1, $2, $3)",
                    &[id.into(), path.as_str().into(), data.clone().into()],
                )?;
            }
            t.exec(
                "INSERT INTO events (at_ms, kind, user_name, detail) VALUES ($1, 'import', '', $2)",
                &[now.into(), format!("package `{name}` version {version} ({version_guid})").into()],
            )?;
            bump(t)?;
            Ok(())
        });
        info?;
        self.package(&name)
    }

    /// One package.
    ///
    /// # Errors
    /// Unknown package.
    pub fn package(&self, name: &str) -> Result<PackageInfo, Error> {
        self.packages()?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| unknown("package", name))
    }

    /// Every package, by name.
    pub fn packages(&self) -> Result<Vec<PackageInfo>, Error> {
        self.db.read(|t| {
            let rows = t.query(
                "SELECT id, name, guid, version_guid, version, sft_file, size, licence, licence_count, manifest FROM packages ORDER BY name",
                &[],
            )?;
            let grants = t.query(
                "SELECT gr.package_id, g.name FROM grants gr JOIN groups_ g ON g.id = gr.group_id ORDER BY g.name",
                &[],
            )?;
            let mut by_pkg: BTreeMap<i64, Vec<String>> = BTreeMap::new();
            for r in grants {
                by_pkg
                    .entry(r.first().and_then(Val::int).unwrap_or(0))
                    .or_default()
                    .push(text(&r, 1));
            }
            Ok(rows
                .into_iter()
                .map(|r| {
                    let id = r.first().and_then(Val::int).unwrap_or(0);
                    let apps = Manifest::parse(text(&r, 9).as_bytes())
                        .map(|m| m.apps.items.iter().filter_map(|a| a.name.clone()).collect())
                        .unwrap_or_default();
                    PackageInfo {
                        name: text(&r, 1),
                        guid: text(&r, 2),
                        version_guid: text(&r, 3),
                        version: text(&r, 4),
                        sft_file: text(&r, 5),
                        size: r.get(6).and_then(Val::int).unwrap_or(0).max(0) as u64,
                        licence: licence_kind(&text(&r, 7), r.get(8).and_then(Val::int).unwrap_or(0)),
                        groups: by_pkg.remove(&id).unwrap_or_default(),
                        apps,
                    }
                })
                .collect())
        })
    }

    /// Delete a package from the server (grants, licences and its files
    /// in the database go with it; its SFT files stay in the content
    /// folder for clients still streaming them).
    ///
    /// # Errors
    /// Unknown package.
    pub fn delete_package(&self, name: &str) -> Result<(), Error> {
        self.db.tx(|t| {
            let p = package_id(t, name)?;
            for table in ["grants", "named_licences", "leases", "package_files"] {
                t.exec(
                    &format!("DELETE FROM {table} WHERE package_id = $1"),
                    &[p.into()],
                )?;
            }
            t.exec("DELETE FROM packages WHERE id = $1", &[p.into()])?;
            bump(t)
        })
    }

    // ----------------------------------------------------------- grants

    /// Entitle `group` to `package` (every application in it).
    ///
    /// # Errors
    /// Unknown group or package.
    pub fn grant(&self, group: &str, package: &str) -> Result<(), Error> {
        self.db.tx(|t| {
            let g = group_id(t, group)?;
            let p = package_id(t, package)?;
            link(t, Link::Grants, g, p)?;
            bump(t)
        })
    }

    /// Take `package` away from `group`.
    ///
    /// # Errors
    /// Unknown group, package or grant.
    pub fn revoke(&self, group: &str, package: &str) -> Result<(), Error> {
        self.db.tx(|t| {
            let g = group_id(t, group)?;
            let p = package_id(t, package)?;
            if !unlink(t, Link::Grants, g, p)? {
                return Err(Error::manage(
                    ManageProblem::Unknown,
                    format!("group `{group}` is not granted `{package}`"),
                ));
            }
            bump(t)
        })
    }

    // --------------------------------------------------------- licences

    /// Set a package's licence.
    ///
    /// # Errors
    /// Unknown package; a concurrent licence of 0.
    pub fn set_licence(&self, package: &str, kind: LicenceKind) -> Result<(), Error> {
        let (k, n) = match kind {
            LicenceKind::Unlimited => ("unlimited", 0),
            LicenceKind::Concurrent(0) => {
                return Err(Error::invalid(
                    "a concurrent licence needs a count of at least 1",
                ));
            }
            LicenceKind::Concurrent(n) => ("concurrent", i64::from(n)),
            LicenceKind::Named => ("named", 0),
        };
        self.db.tx(|t| {
            let p = package_id(t, package)?;
            t.exec(
                "UPDATE packages SET licence = $1, licence_count = $2 WHERE id = $3",
                &[k.into(), n.into(), p.into()],
            )?;
            bump(t)
        })
    }

    /// Give `user` a named licence of `package`.
    ///
    /// # Errors
    /// Unknown user or package.
    pub fn assign_licence(&self, package: &str, user: &str) -> Result<(), Error> {
        self.db.tx(|t| {
            let p = package_id(t, package)?;
            let u = user_id(t, user)?;
            link(t, Link::NamedLicences, p, u)?;
            bump(t)
        })
    }

    /// Take a named licence of `package` from `user`.
    ///
    /// # Errors
    /// Unknown user or package.
    pub fn unassign_licence(&self, package: &str, user: &str) -> Result<(), Error> {
        self.db.tx(|t| {
            let p = package_id(t, package)?;
            let u = user_id(t, user)?;
            unlink(t, Link::NamedLicences, p, u)?;
            bump(t)
        })
    }

    // ----------------------------------------------------------- policy

    /// The refresh policy sent to clients.
    pub fn policy(&self) -> Result<RefreshPolicy, Error> {
        let all = self.settings()?;
        let get = |k: &str| all.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        Ok(RefreshPolicy {
            on_login: get("refresh_on_login") != Some("false"),
            period_minutes: get("refresh_minutes")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            reporting: get("reporting") != Some("false"),
            require_authorization_if_cached: get("require_authorization_if_cached")
                != Some("false"),
        })
    }

    /// How long a concurrent-licence lease lasts without renewal.
    pub fn lease_seconds(&self) -> Result<u64, Error> {
        Ok(self
            .settings()?
            .iter()
            .find(|(k, _)| k == "lease_seconds")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(300))
    }

    /// Every policy setting, by name.
    pub fn settings(&self) -> Result<Vec<(String, String)>, Error> {
        self.db.read(|t| {
            Ok(t.query("SELECT key, value FROM policy ORDER BY key", &[])?
                .into_iter()
                .map(|r| (text(&r, 0), text(&r, 1)))
                .collect())
        })
    }

    /// Set a policy setting: `refresh_on_login` and `reporting` and
    /// `require_authorization_if_cached` (`true`/`false`),
    /// `refresh_minutes` (0, or 30 to 1,438,560: App-V's 30 minutes to 999
    /// days), `lease_seconds` (10 to 86,400).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an unknown setting or a bad value.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), Error> {
        let ok = match key {
            "refresh_on_login" | "reporting" | "require_authorization_if_cached" => {
                value == "true" || value == "false"
            }
            "refresh_minutes" => value
                .parse::<u32>()
                .is_ok_and(|m| m == 0 || (30..=999 * 1440).contains(&m)),
            "lease_seconds" => value
                .parse::<u32>()
                .is_ok_and(|s| (10..=86_400).contains(&s)),
            _ => {
                return Err(Error::invalid(format!(
                    "unknown setting `{}`: use refresh_on_login, refresh_minutes, reporting, require_authorization_if_cached or lease_seconds",
                    key.escape_debug()
                )));
            }
        };
        if !ok {
            return Err(Error::invalid(format!(
                "setting `{key}`: `{}` is not a valid value",
                value.escape_debug()
            )));
        }
        self.db.tx(|t| {
            t.exec(
                "UPDATE policy SET value = $1 WHERE key = $2",
                &[value.into(), key.into()],
            )?;
            bump(t)
        })
    }
}

/// A user name: as [`check_name`], and no `:` (HTTP Basic ends the name
/// at the first one).
fn check_user_name(name: &str) -> Result<(), Error> {
    check_name("user", name)?;
    if name.contains(':') {
        return Err(Error::invalid(format!(
            "user name `{}`: no `:` (HTTP Basic could not log in as it)",
            name.escape_debug()
        )));
    }
    Ok(())
}

fn exists(kind: &str, name: &str) -> Error {
    Error::manage(
        ManageProblem::Exists,
        format!("{kind} `{}` already exists", name.escape_debug()),
    )
}

pub(crate) fn text(r: &[Val], i: usize) -> String {
    r.get(i).and_then(Val::text).unwrap_or_default().to_owned()
}

pub(crate) fn licence_kind(k: &str, n: i64) -> LicenceKind {
    match k {
        "concurrent" => LicenceKind::Concurrent(u32::try_from(n).unwrap_or(0)),
        "named" => LicenceKind::Named,
        _ => LicenceKind::Unlimited,
    }
}

/// The tables that link two ids.
#[derive(Clone, Copy)]
enum Link {
    /// group → user.
    Members,
    /// group → package.
    Grants,
    /// package → user.
    NamedLicences,
}

impl Link {
    /// (select, insert, delete), each on the pair `$1`, `$2`.
    fn sql(self) -> [&'static str; 3] {
        match self {
            Link::Members => [
                "SELECT 1 FROM members WHERE group_id = $1 AND user_id = $2",
                "INSERT INTO members (group_id, user_id) VALUES ($1, $2)",
                "DELETE FROM members WHERE group_id = $1 AND user_id = $2",
            ],
            Link::Grants => [
                "SELECT 1 FROM grants WHERE group_id = $1 AND package_id = $2",
                "INSERT INTO grants (group_id, package_id) VALUES ($1, $2)",
                "DELETE FROM grants WHERE group_id = $1 AND package_id = $2",
            ],
            Link::NamedLicences => [
                "SELECT 1 FROM named_licences WHERE package_id = $1 AND user_id = $2",
                "INSERT INTO named_licences (package_id, user_id) VALUES ($1, $2)",
                "DELETE FROM named_licences WHERE package_id = $1 AND user_id = $2",
            ],
        }
    }
}

/// Link `a` to `b` (no change if linked).
fn link(t: &mut dyn Sql, table: Link, a: i64, b: i64) -> Result<(), Error> {
    let [select, insert, _] = table.sql();
    if t.query_opt(select, &[a.into(), b.into()])?.is_none() {
        t.exec(insert, &[a.into(), b.into()])?;
    }
    Ok(())
}

/// Unlink `a` from `b`; whether they were linked.
fn unlink(t: &mut dyn Sql, table: Link, a: i64, b: i64) -> Result<bool, Error> {
    let [_, _, delete] = table.sql();
    Ok(t.exec(delete, &[a.into(), b.into()])? > 0)
}

fn id_of(t: &mut dyn Sql, sql: &str, kind: &str, name: &str) -> Result<i64, Error> {
    t.query_opt(sql, &[name.into()])?
        .and_then(|r| r.first().and_then(Val::int))
        .ok_or_else(|| unknown(kind, name))
}

pub(crate) fn user_id(t: &mut dyn Sql, name: &str) -> Result<i64, Error> {
    id_of(t, "SELECT id FROM users WHERE name = $1", "user", name)
}

pub(crate) fn group_id(t: &mut dyn Sql, name: &str) -> Result<i64, Error> {
    id_of(t, "SELECT id FROM groups_ WHERE name = $1", "group", name)
}

pub(crate) fn package_id(t: &mut dyn Sql, name: &str) -> Result<i64, Error> {
    id_of(
        t,
        "SELECT id FROM packages WHERE name = $1",
        "package",
        name,
    )
}

/// Copy `from` to `to` through a temporary file in `to`'s folder, synced
/// and renamed into place.
fn copy_atomic(from: &Path, to: &Path) -> Result<(), Error> {
    let dir = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("creating `{}`", dir.display()), e))?;
    let mut src = std::fs::File::open(from)
        .map_err(|e| Error::io(format!("opening `{}`", from.display()), e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| {
        Error::io(
            format!("creating a temporary file in `{}`", dir.display()),
            e,
        )
    })?;
    std::io::copy(&mut src, tmp.as_file_mut())
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| {
            Error::io(
                format!("copying `{}` to `{}`", from.display(), to.display()),
                e,
            )
        })?;
    tmp.persist(to)
        .map_err(|e| Error::io(format!("renaming into `{}`", to.display()), e.error))?;
    crate::io::atomic::sync_dir(dir)
}

/// What an import read and checked, before anything changes.
struct Staged {
    manifest: Manifest,
    /// Descriptor files by their path relative to `%SFT_MIME_SOURCE%`.
    files: Vec<(String, Vec<u8>)>,
    sft: PathBuf,
    /// Holds an SFT taken out of a bundle.
    _tmp: Option<tempfile::TempDir>,
}

impl Staged {
    fn read(source: &Path, options: &ImportOptions) -> Result<Staged, Error> {
        let is_bundle = source
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("sftb"));
        if is_bundle {
            return Staged::from_bundle(source, options);
        }
        let bytes = read_bounded(source, MAX_DESCRIPTOR)?;
        let manifest = Manifest::parse(&bytes).map_err(|e| about(source, e))?;
        let dir = source.parent().unwrap_or(Path::new("."));
        let mut files = Vec::new();
        for (loc, icon) in descriptor_refs(&manifest) {
            let rel = relative_ref(&loc).ok_or_else(|| {
                Error::invalid(format!(
                    "manifest `{}`: `{loc}` is not under %SFT_MIME_SOURCE%; the server serves a package's descriptors itself",
                    source.display()
                ))
            })?;
            if files.iter().any(|(p, _)| *p == rel) {
                continue;
            }
            let path = dir.join(&rel);
            let data = read_bounded(
                &path,
                if icon {
                    crate::publish::MAX_ICON_BYTES as u64
                } else {
                    MAX_DESCRIPTOR
                },
            )?;
            check_descriptor(&path, &data, icon)?;
            files.push((rel, data));
        }
        let sft = match &options.sft {
            Some(p) => p.clone(),
            None => {
                let href = manifest
                    .package
                    .as_ref()
                    .and_then(|p| p.href.as_deref())
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "manifest `{}` names no PACKAGE HREF: give the SFT with --sft",
                            source.display()
                        ))
                    })?;
                // The SFT beside the manifest, by the file name its HREF
                // ends in (decoded, for a file:// URL).
                let path = crate::fetch::local_path(href)
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| href.to_owned());
                let file = path.rsplit(['/', '\\']).next().unwrap_or(&path).to_owned();
                dir.join(file)
            }
        };
        Ok(Staged {
            manifest,
            files,
            sft,
            _tmp: None,
        })
    }

    fn from_bundle(source: &Path, options: &ImportOptions) -> Result<Staged, Error> {
        let b = crate::bundle::Bundle::open(source)?;
        let manifest = b.manifest().clone();
        let mut files = Vec::new();
        for (loc, icon) in descriptor_refs(&manifest) {
            let Some(rel) = relative_ref(&loc) else {
                return Err(Error::Bundle(format!(
                    "`{}`: `{loc}` is not under %SFT_MIME_SOURCE%",
                    source.display()
                )));
            };
            if files.iter().any(|(p, _)| *p == rel) {
                continue;
            }
            let data = b.read(&rel)?;
            check_descriptor(Path::new(&rel), &data, icon)?;
            files.push((rel, data));
        }
        let (sft, tmp) = match (&options.sft, b.has_sft()) {
            (Some(p), _) => (p.clone(), None),
            (None, true) => {
                let tmp =
                    tempfile::tempdir().map_err(|e| Error::io("creating a temporary folder", e))?;
                let p = tmp.path().join("package.sft");
                b.extract_sft(&p)?;
                (p, Some(tmp))
            }
            (None, false) => {
                return Err(Error::invalid(format!(
                    "`{}` carries no SFT: give it with --sft",
                    source.display()
                )));
            }
        };
        Ok(Staged {
            manifest,
            files,
            sft,
            _tmp: tmp,
        })
    }
}

/// Every OSD and icon location a manifest names: (location, is icon).
fn descriptor_refs(m: &Manifest) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for a in &m.apps.items {
        if let Some(o) = &a.osd {
            out.push((o.clone(), false));
        }
        if let Some(i) = &a.icon {
            out.push((i.clone(), true));
        }
        for ft in a.file_types.iter().flat_map(|l| &l.items) {
            if let Some(i) = &ft.icon {
                out.push((i.clone(), true));
            }
        }
    }
    out
}

/// `%SFT_MIME_SOURCE%/a/b.osd` as `a/b.osd`; `None` for anything else or a
/// path that could leave the package's folder.
pub(crate) fn relative_ref(loc: &str) -> Option<String> {
    let rest = expand_vars(loc, |n| {
        (n == "SFT_MIME_SOURCE").then(|| "\u{1}".to_owned())
    })
    .ok()?;
    let rest = rest.strip_prefix('\u{1}')?.trim_start_matches(['/', '\\']);
    let rel = rest.replace('\\', "/");
    let ok = !rel.is_empty()
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains(['\0', ':']));
    ok.then_some(rel)
}

fn check_descriptor(path: &Path, data: &[u8], icon: bool) -> Result<(), Error> {
    if icon {
        validate_icon(data).map_err(|e| about(path, e))?;
    } else {
        Osd::parse(data).map_err(|e| about(path, e))?;
    }
    Ok(())
}

fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let f = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("opening `{}`", path.display()), e))?;
    let mut data = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::io(format!("reading `{}`", path.display()), e))?;
    if data.len() as u64 > max {
        return Err(Error::invalid(format!(
            "`{}` is over {max} bytes",
            path.display()
        )));
    }
    Ok(data)
}

fn about(path: &Path, e: Error) -> Error {
    Error::invalid(format!("`{}`: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::relative_ref;

    #[test]
    fn descriptor_refs_stay_in_the_package() {
        assert_eq!(
            relative_ref("%SFT_MIME_SOURCE%/a.osd").as_deref(),
            Some("a.osd")
        );
        assert_eq!(
            relative_ref("%SFT_MIME_SOURCE%\\Icons\\a.ico").as_deref(),
            Some("Icons/a.ico")
        );
        for bad in [
            "%SFT_MIME_SOURCE%/../x.osd",
            "/etc/passwd",
            "%SFT_MIME_SOURCE%/",
            "http://x/a.osd",
            "%SFT_MIME_SOURCE%/a/./b",
            "%SFT_MIME_SOURCE%/c:x",
        ] {
            assert_eq!(relative_ref(bad), None, "{bad}");
        }
    }
}
