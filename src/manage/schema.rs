//! The schema and its versioned migrations, one list for both databases
//! (see `docs/MANAGE.md`). A migration runs once, in order, inside one
//! transaction that also records its version; several servers starting on
//! one PostgreSQL database at once take an advisory lock first, so each
//! migration runs exactly once.

use super::db::{Db, Dialect, Sql};
use crate::error::Error;

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`.
pub(crate) const MIGRATIONS: &[&[&str]] = &[
    &[
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('generation', 1)",
        "CREATE TABLE users (
        id {id},
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        admin BIGINT NOT NULL DEFAULT 0,
        created_ms BIGINT NOT NULL)",
        "CREATE TABLE groups_ (
        id {id},
        name TEXT NOT NULL UNIQUE)",
        "CREATE TABLE members (
        group_id BIGINT NOT NULL REFERENCES groups_(id) ON DELETE CASCADE,
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (group_id, user_id))",
        "CREATE INDEX members_user ON members (user_id)",
        "CREATE TABLE packages (
        id {id},
        name TEXT NOT NULL UNIQUE,
        guid TEXT NOT NULL,
        version_guid TEXT NOT NULL,
        version TEXT NOT NULL,
        sft_file TEXT NOT NULL UNIQUE,
        size BIGINT NOT NULL,
        manifest TEXT NOT NULL,
        enabled BIGINT NOT NULL DEFAULT 1,
        licence TEXT NOT NULL DEFAULT 'unlimited',
        licence_count BIGINT NOT NULL DEFAULT 0,
        imported_ms BIGINT NOT NULL)",
        "CREATE TABLE package_files (
        package_id BIGINT NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        data {blob} NOT NULL,
        PRIMARY KEY (package_id, path))",
        "CREATE TABLE grants (
        group_id BIGINT NOT NULL REFERENCES groups_(id) ON DELETE CASCADE,
        package_id BIGINT NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        PRIMARY KEY (group_id, package_id))",
        "CREATE INDEX grants_package ON grants (package_id)",
        "CREATE TABLE named_licences (
        package_id BIGINT NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (package_id, user_id))",
        "CREATE TABLE leases (
        id TEXT PRIMARY KEY,
        package_id BIGINT NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        client TEXT NOT NULL,
        started_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL)",
        "CREATE INDEX leases_package ON leases (package_id, expires_ms)",
        "CREATE TABLE tokens (
        hash TEXT PRIMARY KEY,
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_ms BIGINT NOT NULL,
        expires_ms BIGINT NOT NULL)",
        "CREATE TABLE policy (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO policy (key, value) VALUES ('refresh_on_login', 'true')",
        "INSERT INTO policy (key, value) VALUES ('refresh_minutes', '0')",
        "INSERT INTO policy (key, value) VALUES ('reporting', 'true')",
        "INSERT INTO policy (key, value) VALUES ('require_authorization_if_cached', 'true')",
        "INSERT INTO policy (key, value) VALUES ('lease_seconds', '300')",
        "CREATE TABLE usage (
        id {id},
        received_ms BIGINT NOT NULL,
        host TEXT NOT NULL,
        user_name TEXT NOT NULL,
        app TEXT NOT NULL,
        app_version TEXT NOT NULL,
        server TEXT NOT NULL,
        launched_ms BIGINT NOT NULL,
        shutdown_ms BIGINT)",
        "CREATE INDEX usage_app ON usage (app, launched_ms)",
        "CREATE TABLE client_packages (
        host TEXT NOT NULL,
        guid TEXT NOT NULL,
        name TEXT NOT NULL,
        version_guid TEXT NOT NULL,
        pct_cached BIGINT NOT NULL,
        reported_ms BIGINT NOT NULL,
        PRIMARY KEY (host, guid))",
        "CREATE TABLE clients (
        host TEXT PRIMARY KEY,
        client_version TEXT NOT NULL,
        cache_size BIGINT NOT NULL,
        cache_used BIGINT NOT NULL,
        reported_ms BIGINT NOT NULL)",
        "CREATE TABLE events (
        id {id},
        at_ms BIGINT NOT NULL,
        kind TEXT NOT NULL,
        user_name TEXT NOT NULL,
        detail TEXT NOT NULL)",
    ],
    &[
        // 2: web console sessions (by the SHA-256 of their cookie).
        "CREATE TABLE sessions (
        hash TEXT PRIMARY KEY,
        user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        expires_ms BIGINT NOT NULL)",
    ],
];

/// Bring the store to the newest schema. Returns the version it is at.
pub(crate) fn migrate(db: &Db) -> Result<usize, Error> {
    db.tx(|t| {
        if t.dialect() == Dialect::Postgres {
            // One migrating server at a time; the lock ends with the
            // transaction.
            t.query("SELECT pg_advisory_xact_lock(7460514)", &[])?;
        }
        t.exec(
            "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)",
            &[],
        )?;
        let mut have = current(t)?;
        if have > MIGRATIONS.len() {
            return Err(Error::manage(
                crate::ManageProblem::Database,
                format!(
                    "the management database is at schema version {have}, newer than this sft knows ({}); upgrade sft",
                    MIGRATIONS.len()
                ),
            ));
        }
        for (i, steps) in MIGRATIONS.iter().enumerate().skip(have) {
            for s in *steps {
                t.exec(s, &[])?;
            }
            have = i + 1;
        }
        t.exec("DELETE FROM schema_version", &[])?;
        t.exec(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[(have as i64).into()],
        )?;
        Ok(have)
    })
}

fn current(t: &mut dyn Sql) -> Result<usize, Error> {
    Ok(usize::try_from(t.query_int("SELECT MAX(version) FROM schema_version", &[])?).unwrap_or(0))
}
