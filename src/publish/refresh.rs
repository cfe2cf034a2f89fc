//! The publishing refresh protocol's documents, shared by the Management
//! Server (`sft::manage`) and the client store: the answer to a refresh in
//! both forms App-V used, and the usage report a client sends back. Pure
//! XML in and out, bounded by [`Limits`]; see `docs/MANAGE.md`.
//!
//! - [`PublishingAnswer`]: `<Publishing Protocol="1.0">` with
//!   `<Packages><Package PackageId VersionId PackageUrl …/>` ([MS-VAPR]'s
//!   form, which App-V 5 documents openly), plus a `<Policy>` element and
//!   attributes this crate adds (`Name`, `Version`, `PublishingUrl`);
//! - [`desktop_config`]: App-V 4.x's `<DESKTOPCONFIG>` with `<POLICY>`
//!   (`REPORTING`, `<REFRESH ONLOGIN PERIOD>`) and the joined `<APPLIST>`
//!   of every entitled package's manifest;
//! - [`UsageReport`]: the 4.6 client's `AppV-Op: Report` body,
//!   `CLIENT_DATA` / `PKG_LIST` / `PKG_DATA` / `APP_RECORDS` /
//!   `APP_RECORD`.
//!
//! ```
//! use sft::publish::{PublishingAnswer, PublishedPackage};
//! let a = PublishingAnswer {
//!     packages: vec![PublishedPackage {
//!         name: "Editor".into(),
//!         package_id: "{6b1e0a3c-9f52-4a7d-b3e8-1c2d3e4f5a6b}".into(),
//!         version_id: "{00000000-0000-0000-0000-000000000001}".into(),
//!         version: "1".into(),
//!         package_url: "http://srv/content/editor.sft".into(),
//!         publishing_url: "http://srv/packages/Editor/publishing.sftb".into(),
//!     }],
//!     ..Default::default()
//! };
//! assert_eq!(PublishingAnswer::parse(a.to_xml().as_bytes())?, a);
//! # Ok::<(), sft::Error>(())
//! ```

use super::manifest::Manifest;
use super::xml::{Attribute, Element, Limits, Node, decode};
use crate::error::Error;

/// The policy part of a refresh answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// Refresh at login (App-V's `REFRESH ONLOGIN`, default on).
    pub on_login: bool,
    /// Refresh every this many minutes (0: never on a timer).
    pub period_minutes: u32,
    /// Send usage reports (`REPORTING="TRUE"`).
    pub reporting: bool,
    /// A cached application needs the server's authorisation to launch
    /// (App-V's `REQUIREAUTHORIZATIONIFCACHED`); off: offline launches of
    /// cached applications are allowed.
    pub require_authorization_if_cached: bool,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            on_login: true,
            period_minutes: 0,
            reporting: true,
            require_authorization_if_cached: true,
        }
    }
}

/// One package a user may use, in a [`PublishingAnswer`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishedPackage {
    /// The package's name on the server (as grants use it).
    pub name: String,
    /// The package GUID (`PackageId`).
    pub package_id: String,
    /// The package version GUID (`VersionId`): a new one is an upgrade.
    pub version_id: String,
    /// The package version number.
    pub version: String,
    /// Where the SFT streams from (`PackageUrl`).
    pub package_url: String,
    /// Where the publishing bundle (`.sftb`: manifest, OSDs, icons) is.
    pub publishing_url: String,
}

/// The answer to a publishing refresh, in [MS-VAPR]'s form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishingAnswer {
    /// The refresh and reporting policy.
    pub policy: RefreshPolicy,
    /// Every package the user may use.
    pub packages: Vec<PublishedPackage>,
}

fn flag(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn parse_flag(e: &Element, name: &str, default: bool) -> Result<bool, Error> {
    match e.attribute(name) {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
        Some(v) => Err(Error::invalid(format!(
            "publishing answer: {name}=\"{v}\" is not true or false"
        ))),
    }
}

/// Limits for refresh documents: up to 64 MiB (a large site's answer).
fn limits() -> Limits {
    Limits {
        max_input: 64 << 20,
        ..Limits::default()
    }
}

impl PublishingAnswer {
    /// The answer as XML.
    pub fn to_xml(&self) -> String {
        let mut root = Element::new("Publishing");
        root.attributes.push(Attribute::new("Protocol", "1.0"));
        let mut policy = Element::new("Policy");
        let p = &self.policy;
        policy.attributes = vec![
            Attribute::new("RefreshOnLogin", flag(p.on_login)),
            Attribute::new("RefreshMinutes", p.period_minutes.to_string()),
            Attribute::new("Reporting", flag(p.reporting)),
            Attribute::new(
                "RequireAuthorizationIfCached",
                flag(p.require_authorization_if_cached),
            ),
        ];
        root.children.push(Node::Element(policy));
        let mut list = Element::new("Packages");
        for pkg in &self.packages {
            let mut e = Element::new("Package");
            e.attributes = vec![
                Attribute::new("PackageId", &pkg.package_id),
                Attribute::new("VersionId", &pkg.version_id),
                Attribute::new("PackageUrl", &pkg.package_url),
                Attribute::new("Name", &pkg.name),
                Attribute::new("Version", &pkg.version),
                Attribute::new("PublishingUrl", &pkg.publishing_url),
            ];
            list.children.push(Node::Element(e));
        }
        root.children.push(Node::Element(list));
        root.to_xml()
    }

    /// Parse an answer (UTF-8, or UTF-16 with a BOM).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for malformed XML, another document, a
    /// package without `PackageId`, `VersionId`, `PackageUrl`, `Name` or
    /// `PublishingUrl`, or two packages with one name.
    pub fn parse(bytes: &[u8]) -> Result<PublishingAnswer, Error> {
        let lim = limits();
        let root = Element::parse(&decode(bytes, &lim)?, &lim)?;
        if !root.is_named("Publishing") {
            return Err(Error::invalid(format!(
                "publishing answer: the root is <{}>, not <Publishing>",
                root.name
            )));
        }
        let mut a = PublishingAnswer::default();
        for e in root.elements() {
            if e.is_named("Policy") {
                a.policy = RefreshPolicy {
                    on_login: parse_flag(e, "RefreshOnLogin", true)?,
                    period_minutes: match e.attribute("RefreshMinutes") {
                        None => 0,
                        Some(v) => v.trim().parse().map_err(|_| {
                            Error::invalid(format!(
                                "publishing answer: RefreshMinutes=\"{v}\" is not a number"
                            ))
                        })?,
                    },
                    reporting: parse_flag(e, "Reporting", false)?,
                    require_authorization_if_cached: parse_flag(
                        e,
                        "RequireAuthorizationIfCached",
                        true,
                    )?,
                };
            } else if e.is_named("Packages") {
                for p in e.elements().filter(|p| p.is_named("Package")) {
                    let get = |n: &str| {
                        p.attribute(n)
                            .filter(|v| !v.trim().is_empty())
                            .map(str::to_owned)
                            .ok_or_else(|| {
                                Error::invalid(format!(
                                    "publishing answer: a <Package> at line {} has no {n}",
                                    p.position().0
                                ))
                            })
                    };
                    let pkg = PublishedPackage {
                        name: get("Name")?,
                        package_id: get("PackageId")?,
                        version_id: get("VersionId")?,
                        version: p.attribute("Version").unwrap_or_default().to_owned(),
                        package_url: get("PackageUrl")?,
                        publishing_url: get("PublishingUrl")?,
                    };
                    if a.packages.iter().any(|q| q.name == pkg.name) {
                        return Err(Error::invalid(format!(
                            "publishing answer: package `{}` is listed twice",
                            pkg.name
                        )));
                    }
                    a.packages.push(pkg);
                }
            }
        }
        Ok(a)
    }
}

/// App-V 4.x's answer, `<DESKTOPCONFIG>`: the policy and the joined
/// `APPLIST` of every package's manifest, each package's `%SFT_MIME_SOURCE%`
/// replaced by the URL its descriptors are served from.
///
/// ```
/// use sft::publish::{Manifest, RefreshPolicy, desktop_config};
/// let m = Manifest::parse(br#"<MANIFEST><APPLIST><APP NAME="Editor" OSD="%SFT_MIME_SOURCE%/e.osd"/></APPLIST></MANIFEST>"#)?;
/// let x = desktop_config(&RefreshPolicy::default(), &[(m, "http://srv/packages/Editor".into())]);
/// assert!(x.contains(r#"OSD="http://srv/packages/Editor/e.osd""#), "{x}");
/// assert!(x.contains(r#"REPORTING="TRUE""#), "{x}");
/// # Ok::<(), sft::Error>(())
/// ```
pub fn desktop_config(policy: &RefreshPolicy, packages: &[(Manifest, String)]) -> String {
    let mut root = Element::new("DESKTOPCONFIG");
    let mut pol = Element::new("POLICY");
    pol.attributes = vec![
        Attribute::new("MANAGEDESKTOP", "TRUE"),
        Attribute::new("REPORTING", if policy.reporting { "TRUE" } else { "FALSE" }),
    ];
    let mut refresh = Element::new("REFRESH");
    refresh.attributes = vec![
        Attribute::new("ONLOGIN", if policy.on_login { "TRUE" } else { "FALSE" }),
        Attribute::new("PERIOD", policy.period_minutes.to_string()),
    ];
    pol.children.push(Node::Element(refresh));
    root.children.push(Node::Element(pol));
    let mut list = Element::new("APPLIST");
    for (m, source) in packages {
        let apps = m.to_element();
        for app in apps
            .elements()
            .filter(|e| e.is_named("APPLIST"))
            .flat_map(Element::elements)
        {
            let mut app = app.clone();
            rewrite_source(&mut app, source);
            list.children.push(Node::Element(app));
        }
    }
    root.children.push(Node::Element(list));
    root.to_xml()
}

fn rewrite_source(e: &mut Element, source: &str) {
    for a in &mut e.attributes {
        if let Some(rest) = a.value.strip_prefix("%SFT_MIME_SOURCE%") {
            // A URL now: `/` separators, each segment percent-encoded.
            let path: Vec<String> = rest
                .split(['/', '\\'])
                .filter(|s| !s.is_empty())
                .map(url_segment)
                .collect();
            a.value = format!("{source}/{}", path.join("/"));
        }
    }
    for c in &mut e.children {
        if let Node::Element(c) = c {
            rewrite_source(c, source);
        }
    }
}

fn url_segment(s: &str) -> String {
    percent_encode(s, b"-._~")
}

/// `s` with every byte but ASCII letters, digits and `keep`
/// percent-encoded (`b"-._~"` for a query value or a path segment,
/// `b"-._~/"` for a path).
///
/// ```
/// assert_eq!(sft::publish::percent_encode("a b/c+d", b"-._~/"), "a%20b/c%2Bd");
/// ```
pub fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One package in a [`UsageReport`] (`PKG_DATA`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportedPackage {
    /// `Name`.
    pub name: String,
    /// `Guid`.
    pub guid: String,
    /// `Ver`.
    pub version: String,
    /// `VerGuid`.
    pub version_guid: String,
    /// `Source`.
    pub source: String,
    /// `PctCached`, 0–100.
    pub pct_cached: u8,
}

/// One application run in a [`UsageReport`] (`APP_RECORD`); times are
/// milliseconds since the Unix epoch, written as RFC 3339 UTC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppRecord {
    /// `Name`: the application.
    pub name: String,
    /// `Ver`.
    pub version: String,
    /// `Server`: the publishing server it came from.
    pub server: String,
    /// `User`.
    pub user: String,
    /// `Launched`.
    pub launched_ms: i64,
    /// `Shutdown`, if it has ended.
    pub shutdown_ms: Option<i64>,
}

/// A client's usage report (`CLIENT_DATA`), the body of an
/// `AppV-Op: Report` POST.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageReport {
    /// `Ver`: the client's version.
    pub client_version: String,
    /// `Host`.
    pub host: String,
    /// `CacheSize` in bytes.
    pub cache_size: u64,
    /// `CacheUsed` in bytes.
    pub cache_used: u64,
    /// `PKG_LIST`.
    pub packages: Vec<ReportedPackage>,
    /// `APP_RECORDS`.
    pub apps: Vec<AppRecord>,
}

impl UsageReport {
    /// The report as XML.
    pub fn to_xml(&self) -> String {
        let mut root = Element::new("CLIENT_DATA");
        root.attributes = vec![
            Attribute::new("Ver", &self.client_version),
            Attribute::new("Host", &self.host),
            Attribute::new("CacheSize", self.cache_size.to_string()),
            Attribute::new("CacheUsed", self.cache_used.to_string()),
        ];
        let mut list = Element::new("PKG_LIST");
        for p in &self.packages {
            let mut e = Element::new("PKG_DATA");
            e.attributes = vec![
                Attribute::new("Name", &p.name),
                Attribute::new("Guid", &p.guid),
                Attribute::new("Ver", &p.version),
                Attribute::new("VerGuid", &p.version_guid),
                Attribute::new("Source", &p.source),
                Attribute::new("PctCached", p.pct_cached.to_string()),
            ];
            list.children.push(Node::Element(e));
        }
        root.children.push(Node::Element(list));
        let mut apps = Element::new("APP_RECORDS");
        for a in &self.apps {
            let mut e = Element::new("APP_RECORD");
            e.attributes = vec![
                Attribute::new("Name", &a.name),
                Attribute::new("Ver", &a.version),
                Attribute::new("Server", &a.server),
                Attribute::new("User", &a.user),
                Attribute::new("Launched", rfc3339(a.launched_ms)),
            ];
            if let Some(s) = a.shutdown_ms {
                e.attributes.push(Attribute::new("Shutdown", rfc3339(s)));
            }
            apps.children.push(Node::Element(e));
        }
        root.children.push(Node::Element(apps));
        root.to_xml()
    }

    /// Parse a report, with `limits` (a server takes untrusted reports).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for malformed XML, another document, a
    /// number or time that does not parse, a `PctCached` over 100.
    pub fn parse_with(bytes: &[u8], limits: &Limits) -> Result<UsageReport, Error> {
        let root = Element::parse(&decode(bytes, limits)?, limits)?;
        if !root.is_named("CLIENT_DATA") {
            return Err(Error::invalid(format!(
                "usage report: the root is <{}>, not <CLIENT_DATA>",
                root.name
            )));
        }
        let text = |e: &Element, n: &str| e.attribute(n).unwrap_or_default().to_owned();
        let num = |e: &Element, n: &str| -> Result<u64, Error> {
            match e.attribute(n) {
                None => Ok(0),
                Some(v) => v.trim().parse().map_err(|_| {
                    Error::invalid(format!("usage report: {n}=\"{v}\" is not a number"))
                }),
            }
        };
        let mut r = UsageReport {
            client_version: text(&root, "Ver"),
            host: text(&root, "Host"),
            cache_size: num(&root, "CacheSize")?,
            cache_used: num(&root, "CacheUsed")?,
            ..UsageReport::default()
        };
        for list in root.elements() {
            if list.is_named("PKG_LIST") {
                for p in list.elements().filter(|e| e.is_named("PKG_DATA")) {
                    let pct = num(p, "PctCached")?;
                    if pct > 100 {
                        return Err(Error::invalid(format!(
                            "usage report: PctCached=\"{pct}\" is over 100"
                        )));
                    }
                    r.packages.push(ReportedPackage {
                        name: text(p, "Name"),
                        guid: text(p, "Guid"),
                        version: text(p, "Ver"),
                        version_guid: text(p, "VerGuid"),
                        source: text(p, "Source"),
                        pct_cached: pct as u8,
                    });
                }
            } else if list.is_named("APP_RECORDS") {
                for a in list.elements().filter(|e| e.is_named("APP_RECORD")) {
                    let time = |n: &str| -> Result<Option<i64>, Error> {
                        a.attribute(n)
                            .map(|v| {
                                parse_rfc3339(v).ok_or_else(|| {
                                    Error::invalid(format!(
                                        "usage report: {n}=\"{v}\" is not an RFC 3339 UTC time"
                                    ))
                                })
                            })
                            .transpose()
                    };
                    r.apps.push(AppRecord {
                        name: text(a, "Name"),
                        version: text(a, "Ver"),
                        server: text(a, "Server"),
                        user: text(a, "User"),
                        launched_ms: time("Launched")?.ok_or_else(|| {
                            Error::invalid("usage report: an APP_RECORD has no Launched time")
                        })?,
                        shutdown_ms: time("Shutdown")?,
                    });
                }
            }
        }
        Ok(r)
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
///
/// ```
/// assert_eq!(sft::publish::rfc3339(86_400_123), "1970-01-02T00:00:00.123Z");
/// ```
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` to milliseconds since the epoch.
///
/// ```
/// assert_eq!(sft::publish::parse_rfc3339("1970-01-02T00:00:00.123Z"), Some(86_400_123));
/// assert_eq!(sft::publish::parse_rfc3339("1970-13-02T00:00:00Z"), None);
/// ```
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s
        .trim()
        .strip_suffix('Z')
        .or_else(|| s.trim().strip_suffix('z'))?;
    let (date, time) = s.split_once(['T', 't'])?;
    let mut d = date.splitn(3, '-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':');
    let h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next()?.parse().ok()?;
    let se: i64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    if !(0..=9999).contains(&y) || !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    let ms: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    let days = days_from_civil(y, m, day);
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) * 1000) + ms)
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn times_round_trip(ms in 0i64..253_402_300_799_999) {
            prop_assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }

        #[test]
        fn reports_round_trip(
            host in "[ -~]{0,20}", user in "[ -~]{0,20}", pct in 0u8..=100,
            launched in 0i64..4_000_000_000_000, shut in proptest::option::of(0i64..4_000_000_000_000),
        ) {
            let r = UsageReport {
                client_version: "1".into(), host, cache_size: 10, cache_used: 5,
                packages: vec![ReportedPackage { name: "p".into(), pct_cached: pct, ..Default::default() }],
                apps: vec![AppRecord { name: "a".into(), user, launched_ms: launched, shutdown_ms: shut, ..Default::default() }],
            };
            prop_assert_eq!(UsageReport::parse_with(r.to_xml().as_bytes(), &Limits::default()).unwrap(), r);
        }
    }

    #[test]
    fn bad_answers_are_refused() {
        for bad in [
            &b"<DESKTOPCONFIG/>"[..],
            b"<Publishing><Packages><Package Name=\"a\"/></Packages></Publishing>",
            b"<Publishing><Policy Reporting=\"maybe\"/></Publishing>",
            b"<Publishing",
        ] {
            assert!(PublishingAnswer::parse(bad).is_err());
        }
        let twice = b"<Publishing><Packages>\
            <Package Name=\"a\" PackageId=\"x\" VersionId=\"y\" PackageUrl=\"u\" PublishingUrl=\"p\"/>\
            <Package Name=\"a\" PackageId=\"x\" VersionId=\"y\" PackageUrl=\"u\" PublishingUrl=\"p\"/>\
            </Packages></Publishing>";
        assert!(
            PublishingAnswer::parse(twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let r = b"<CLIENT_DATA><PKG_LIST><PKG_DATA PctCached=\"101\"/></PKG_LIST></CLIENT_DATA>";
        assert!(UsageReport::parse_with(r, &Limits::default()).is_err());
    }
}
