//! Usage reports: what clients send (`AppV-Op: Report`) is kept, and
//! read back as App-V's reports: application utilisation, software audit,
//! system utilisation and errors, each as rows for JSON or CSV.

use super::Manager;
use super::admin::text;
use super::db::Val;
use super::now_ms;
use crate::error::Error;
use crate::publish::UsageReport;

/// Most application records and packages taken from one report.
const MAX_RECORDS: usize = 10_000;

/// One application run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsageRow {
    /// When the server received it (ms since the epoch).
    pub received_ms: i64,
    /// The reporting client.
    pub host: String,
    /// The user who ran it (the authenticated reporter).
    pub user: String,
    /// The application.
    pub app: String,
    /// Its version.
    pub app_version: String,
    /// The server it came from, as the client named it.
    pub server: String,
    /// Launched (ms since the epoch).
    pub launched_ms: i64,
    /// Shut down, if it has.
    pub shutdown_ms: Option<i64>,
}

/// Application utilisation: launches and users per application.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UtilisationRow {
    /// The application.
    pub app: String,
    /// Launches.
    pub launches: u64,
    /// Distinct users.
    pub users: u64,
    /// Seconds run, over launches that have ended.
    pub seconds: u64,
}

/// An event for the errors report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErrorRow {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// What kind (`login-failed`, `no-licence`, `bad-report`, `import` …).
    pub kind: String,
    /// The user concerned, if any.
    pub user: String,
    /// What happened.
    pub detail: String,
}

impl Manager {
    /// Keep a usage report from `user` (the [`Pipeline`](super::Pipeline)'s
    /// built-in meter). The records are stored under the authenticated
    /// user, whatever user the report itself names.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a report with more than 10,000 records;
    /// database failures.
    pub fn record_report(&self, user: &str, r: &UsageReport) -> Result<(), Error> {
        if r.apps.len() > MAX_RECORDS || r.packages.len() > MAX_RECORDS {
            return Err(Error::invalid(format!(
                "a report may carry at most {MAX_RECORDS} records"
            )));
        }
        let now = now_ms();
        let host: String = r.host.chars().take(256).collect();
        self.db.tx(|t| {
            for a in &r.apps {
                t.exec(
                    "INSERT INTO usage (received_ms, host, user_name, app, app_version, server, launched_ms, shutdown_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    &[
                        now.into(),
                        host.as_str().into(),
                        user.into(),
                        a.name.as_str().into(),
                        a.version.as_str().into(),
                        a.server.as_str().into(),
                        a.launched_ms.into(),
                        a.shutdown_ms.into(),
                    ],
                )?;
            }
            for p in &r.packages {
                t.exec(
                    "DELETE FROM client_packages WHERE host = $1 AND guid = $2",
                    &[host.as_str().into(), p.guid.as_str().into()],
                )?;
                t.exec(
                    "INSERT INTO client_packages (host, guid, name, version_guid, pct_cached, reported_ms) VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        host.as_str().into(),
                        p.guid.as_str().into(),
                        p.name.as_str().into(),
                        p.version_guid.as_str().into(),
                        i64::from(p.pct_cached).into(),
                        now.into(),
                    ],
                )?;
            }
            t.exec("DELETE FROM clients WHERE host = $1", &[host.as_str().into()])?;
            t.exec(
                "INSERT INTO clients (host, client_version, cache_size, cache_used, reported_ms) VALUES ($1, $2, $3, $4, $5)",
                &[
                    host.as_str().into(),
                    r.client_version.as_str().into(),
                    i64::try_from(r.cache_size).unwrap_or(i64::MAX).into(),
                    i64::try_from(r.cache_used).unwrap_or(i64::MAX).into(),
                    now.into(),
                ],
            )?;
            Ok(())
        })
    }

    /// Every application run reported, oldest first.
    ///
    /// # Errors
    /// Database failures.
    pub fn usage(&self) -> Result<Vec<UsageRow>, Error> {
        self.db.read(|t| {
            Ok(t.query(
                "SELECT received_ms, host, user_name, app, app_version, server, launched_ms, shutdown_ms FROM usage ORDER BY launched_ms, id",
                &[],
            )?
            .into_iter()
            .map(|r| UsageRow {
                received_ms: r.first().and_then(Val::int).unwrap_or(0),
                host: text(&r, 1),
                user: text(&r, 2),
                app: text(&r, 3),
                app_version: text(&r, 4),
                server: text(&r, 5),
                launched_ms: r.get(6).and_then(Val::int).unwrap_or(0),
                shutdown_ms: r.get(7).and_then(Val::int),
            })
            .collect())
        })
    }

    /// Application utilisation, by application.
    ///
    /// # Errors
    /// Database failures.
    pub fn utilisation(&self) -> Result<Vec<UtilisationRow>, Error> {
        self.db.read(|t| {
            Ok(t.query(
                "SELECT app, COUNT(*), COUNT(DISTINCT user_name), COALESCE(SUM(CASE WHEN shutdown_ms IS NOT NULL AND shutdown_ms > launched_ms THEN (shutdown_ms - launched_ms) / 1000 ELSE 0 END), 0) FROM usage GROUP BY app ORDER BY app",
                &[],
            )?
            .into_iter()
            .map(|r| {
                let n = |i: usize| r.get(i).and_then(Val::int).unwrap_or(0).max(0) as u64;
                UtilisationRow {
                    app: text(&r, 0),
                    launches: n(1),
                    users: n(2),
                    seconds: n(3),
                }
            })
            .collect())
        })
    }

    /// Software audit: which client holds which package version, and how
    /// much of it is cached: (host, package, version GUID, percent cached).
    ///
    /// # Errors
    /// Database failures.
    pub fn software_audit(&self) -> Result<Vec<(String, String, String, u8)>, Error> {
        self.db.read(|t| {
            Ok(t.query(
                "SELECT host, name, version_guid, pct_cached FROM client_packages ORDER BY host, name",
                &[],
            )?
            .into_iter()
            .map(|r| {
                (
                    text(&r, 0),
                    text(&r, 1),
                    text(&r, 2),
                    r.get(3).and_then(Val::int).unwrap_or(0).clamp(0, 100) as u8,
                )
            })
            .collect())
        })
    }

    /// The errors report: failed logins, refused licences, bad reports,
    /// imports; newest first, at most `limit`.
    ///
    /// # Errors
    /// Database failures.
    pub fn errors(&self, limit: usize) -> Result<Vec<ErrorRow>, Error> {
        self.db.read(|t| {
            Ok(t.query(
                "SELECT at_ms, kind, user_name, detail FROM events ORDER BY at_ms DESC, id DESC LIMIT $1",
                &[i64::try_from(limit).unwrap_or(i64::MAX).into()],
            )?
            .into_iter()
            .map(|r| ErrorRow {
                at_ms: r.first().and_then(Val::int).unwrap_or(0),
                kind: text(&r, 1),
                user: text(&r, 2),
                detail: text(&r, 3),
            })
            .collect())
        })
    }
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or
/// LF; a leading `=`, `+`, `-` or `@` is prefixed with `'` so a
/// spreadsheet never runs it as a formula.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("a"), "a");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }
}
