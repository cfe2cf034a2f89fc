//! The Management Server (feature `manage`): App-V 4.x's fourth streaming
//! method, as an open server. It keeps users, groups, packages, grants,
//! licences, policy and usage reports in a SQL database (SQLite in a
//! file, or PostgreSQL for several servers on one database), answers
//! publishing refreshes per user, checks entitlement and licences before
//! content is served, and takes usage reports. See `docs/MANAGE.md`.
//!
//! - [`Manager`]: the store and every administrative operation (what
//!   `sft manage …` runs);
//! - [`Pipeline`] and its steps ([`Authenticate`], [`Authorise`],
//!   [`Meter`], [`License`]): App-V's provider policy, as traits;
//! - [`ManageServer`]: the HTTP/HTTPS front (publishing, reports,
//!   licences, admin API, the web console under `/console`, content), a
//!   [`Handler`](crate::serve::handler::Handler) on the crate's HTTP
//!   server.
//!
//! ```
//! use sft::manage::Manager;
//! let dir = tempfile::tempdir()?;
//! let m = Manager::open(&format!("sqlite:{}", dir.path().join("m.db").display()), dir.path())?;
//! m.add_user("alice", "correct horse", false)?;
//! m.add_group("staff")?;
//! m.add_member("staff", "alice")?;
//! assert_eq!(m.groups_of("alice")?, ["staff"]);
//! # Ok::<(), sft::Error>(())
//! ```

mod admin;
mod auth;
mod console;
mod db;
mod licence;
mod policy;
mod report;
mod schema;
mod server;

pub use admin::{GroupInfo, ImportOptions, LicenceKind, PackageInfo, UserInfo};
pub use auth::password_hash;
pub use licence::Lease;
pub use policy::{
    Authenticate, Authorise, Credentials, Decision, License, Meter, Pipeline, StoreAuthenticator,
    User,
};
pub use report::csv_field;
pub use report::{ErrorRow, UsageRow, UtilisationRow};
pub use server::{ManageServer, ServerOptions, usage_csv};

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, ManageProblem};

/// The Management Server's store: open it once and share it (it is
/// `Sync`; a small pool of connections serves the threads).
#[derive(Debug)]
pub struct Manager {
    db: db::Db,
    content: Option<PathBuf>,
    auth: auth::AuthState,
}

impl Manager {
    /// Open (and create or migrate) the store at `db_url`, `sqlite:PATH`
    /// or `postgres://…`, with package content under `content` (created
    /// if missing).
    ///
    /// # Errors
    /// `Error::Manage` with [`ManageProblem::Database`] if the database
    /// cannot be reached or is newer than this version; [`Error::Io`] if
    /// `content` cannot be created.
    pub fn open(db_url: &str, content: impl AsRef<Path>) -> Result<Manager, Error> {
        let mut m = Manager::open_db(db_url)?;
        let content = content.as_ref();
        std::fs::create_dir_all(content)
            .map_err(|e| Error::io(format!("creating `{}`", content.display()), e))?;
        m.content = Some(
            content
                .canonicalize()
                .map_err(|e| Error::io(format!("resolving `{}`", content.display()), e))?,
        );
        Ok(m)
    }

    /// Open the store at `db_url` without a content folder: everything
    /// but [`Manager::import_package`] works.
    ///
    /// # Errors
    /// As [`Manager::open`].
    pub fn open_db(db_url: &str) -> Result<Manager, Error> {
        let db = db::Db::open(db_url, 8)?;
        schema::migrate(&db)?;
        Ok(Manager {
            db,
            content: None,
            auth: auth::AuthState::default(),
        })
    }

    /// The default database URL for a content folder: `sqlite:` a file
    /// `manage.db` beside it (`DIR/../manage.db` for `DIR`).
    pub fn default_db_url(content: &Path) -> String {
        let abs = std::path::absolute(content).unwrap_or_else(|_| content.to_path_buf());
        let parent = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        format!("sqlite:{}", parent.join("manage.db").display())
    }

    /// Where package content lives, if this store was opened with it.
    pub fn content_dir(&self) -> Option<&Path> {
        self.content.as_deref()
    }

    /// The publication generation: it grows with every change that can
    /// change an answer (users, groups, grants, packages, licences,
    /// policy), in any server process on the database.
    pub fn generation(&self) -> Result<i64, Error> {
        self.db
            .read(|t| t.query_int("SELECT value FROM meta WHERE key = 'generation'", &[]))
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Bump the generation inside a change's transaction.
pub(crate) fn bump(t: &mut dyn db::Sql) -> Result<(), Error> {
    t.exec(
        "UPDATE meta SET value = value + 1 WHERE key = 'generation'",
        &[],
    )?;
    Ok(())
}

/// A name of a user, group or package: 1 to 128 characters, no control
/// characters, no `/` or `\`, not only spaces.
pub(crate) fn check_name(kind: &str, name: &str) -> Result<(), Error> {
    let ok = !name.trim().is_empty()
        && name.chars().count() <= 128
        && !name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
        && name.trim() == name;
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{kind} name `{}`: use 1 to 128 characters, no control characters, `/` or `\\`, no spaces at either end",
            name.escape_debug()
        )))
    }
}

pub(crate) fn unknown(kind: &str, name: &str) -> Error {
    Error::manage(
        ManageProblem::Unknown,
        format!("no {kind} `{}`", name.escape_debug()),
    )
}
