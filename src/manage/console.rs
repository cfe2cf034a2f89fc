//! The web console (`/console/…`): server-rendered pages for
//! administrators, the views of App-V's Management Console: packages
//! (with import), applications, groups and entitlements, licences,
//! provider policy, administrators and reports.
//!
//! - **Login:** a form; a user who is not an administrator is refused.
//!   The password goes through the same pipeline, throttling and
//!   plain-HTTP rule as HTTP Basic.
//! - **Sessions:** a random 256-bit cookie (`sft_session`: `HttpOnly`,
//!   `SameSite=Strict`, `Path=/console`, `Secure` over TLS). Only its
//!   SHA-256 is stored, in the database, so every server of a group
//!   knows it. Sessions last 8 hours.
//! - **CSRF:** every form carries the session's own random token,
//!   compared in constant time; a cross-site `Origin` is refused too.
//! - **No inline code:** no scripts at all, styles from
//!   `/console/style.css`; a `Content-Security-Policy` that allows
//!   nothing else, `X-Frame-Options: DENY`, `Cache-Control: no-store`.
//!   Everything shown is HTML-escaped.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::admin::{LicenceKind, text};
use super::auth::hex;
use super::db::Val;
use super::policy::{Credentials, User};
use super::{ImportOptions, Manager, now_ms};
use crate::error::Error;
use crate::publish::{Manifest, rfc3339};
use crate::serve::handler::{Request, Response, form_param};

/// How long a console session lasts.
const SESSION_MS: i64 = 8 * 3600 * 1000;

/// The style sheet (the only one; no inline styles).
const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222}\
header{background:#234;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}\
header a{color:#cde;text-decoration:none}header form{margin-left:auto}\
main{padding:16px}table{border-collapse:collapse;margin:8px 0 16px}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}th{background:#eef}\
form.inline{display:inline}fieldset{margin:8px 0 16px;border:1px solid #ccc}\
.ok{background:#dfd;padding:6px}.err{background:#fdd;padding:6px}input,select{margin:2px}";

/// A console session.
struct Session {
    user: User,
    csrf: String,
}

/// HTML-escape `s`.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// Percent-encode for a query value.
fn enc(s: &str) -> String {
    crate::publish::percent_encode(s, b"-._~")
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    argon2::password_hash::rand_core::RngCore::fill_bytes(
        &mut argon2::password_hash::rand_core::OsRng,
        &mut b,
    );
    hex(&b)
}

fn secure_headers(r: Response) -> Response {
    r.header(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    .header("X-Frame-Options", "DENY")
    .header("X-Content-Type-Options", "nosniff")
    .header("Referrer-Policy", "same-origin")
    .header("Cache-Control", "no-store")
}

fn redirect(to: &str) -> Response {
    secure_headers(Response::new(303).header("Location", to))
}

fn page(title: &str, session: Option<&Session>, flash: &str, body: &str) -> Response {
    let mut h =
        String::from("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    let _ = write!(h, "{} · sft Management Console</title>", esc(title));
    h.push_str("<link rel=\"stylesheet\" href=\"/console/style.css\"></head><body><header><strong>sft Management Console</strong>");
    if let Some(s) = session {
        for (href, name) in [
            ("packages", "Packages"),
            ("applications", "Applications"),
            ("groups", "Groups"),
            ("licences", "Licences"),
            ("policies", "Provider policy"),
            ("administrators", "Administrators"),
            ("reports", "Reports"),
        ] {
            let _ = write!(h, "<a href=\"/console/{href}\">{name}</a>");
        }
        let _ = write!(
            h,
            "<form method=\"post\" action=\"/console/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">{} <button type=\"submit\" id=\"logout\">Log out</button></form>",
            esc(&s.csrf),
            esc(&s.user.name)
        );
    }
    h.push_str("</header><main>");
    let _ = write!(h, "<h1>{}</h1>", esc(title));
    h.push_str(flash);
    h.push_str(body);
    h.push_str("</main></body></html>");
    secure_headers(Response::new(200).body("text/html; charset=utf-8", h.into_bytes()))
}

/// The message passed on a redirect (`?ok=…` or `?err=…`), escaped.
fn flash(req: &Request<'_>) -> String {
    if let Some(m) = req.query_param("ok") {
        format!("<p class=\"ok\" id=\"flash\">{}</p>", esc(&m))
    } else if let Some(m) = req.query_param("err") {
        format!("<p class=\"err\" id=\"flash\">{}</p>", esc(&m))
    } else {
        String::new()
    }
}

fn table(head: &[&str], rows: &[Vec<String>], id: &str) -> String {
    let mut h = format!("<table id=\"{id}\"><tr>");
    for c in head {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr>");
    for r in rows {
        h.push_str("<tr>");
        for c in r {
            // Cells are pre-escaped HTML (some hold forms).
            let _ = write!(h, "<td>{c}</td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
    h
}

fn csrf_field(s: &Session) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&s.csrf)
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Manager {
    fn session_of(&self, req: &Request<'_>) -> Option<Session> {
        let cookie = req.header_str("cookie")?;
        let value = cookie.split(';').find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == "sft_session").then(|| v.to_owned())
        })?;
        if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let hash = hex(&Sha256::digest(value.as_bytes()));
        let row = self
            .db
            .read(|t| {
                t.query_opt(
                    "SELECT u.id, u.name, u.admin, s.csrf FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.hash = $1 AND s.expires_ms > $2",
                    &[hash.into(), now_ms().into()],
                )
            })
            .ok()??;
        let user = User {
            id: row.first().and_then(Val::int).unwrap_or(0),
            name: text(&row, 1),
            admin: row.get(2).and_then(Val::int) == Some(1),
        };
        user.admin.then(|| Session {
            user,
            csrf: text(&row, 3),
        })
    }

    fn new_session(&self, user: &User) -> Result<String, Error> {
        let value = random_hex();
        let hash = hex(&Sha256::digest(value.as_bytes()));
        let csrf = random_hex();
        let now = now_ms();
        self.db.tx(|t| {
            t.exec("DELETE FROM sessions WHERE expires_ms <= $1", &[now.into()])?;
            t.exec(
                "INSERT INTO sessions (hash, user_id, csrf, expires_ms) VALUES ($1, $2, $3, $4)",
                &[
                    hash.into(),
                    user.id.into(),
                    csrf.into(),
                    (now + SESSION_MS).into(),
                ],
            )?;
            Ok(())
        })?;
        Ok(value)
    }

    fn end_session(&self, req: &Request<'_>) {
        if let Some(cookie) = req.header_str("cookie")
            && let Some(v) = cookie.split(';').find_map(|c| {
                let (k, v) = c.trim().split_once('=')?;
                (k == "sft_session").then(|| v.to_owned())
            })
        {
            let hash = hex(&Sha256::digest(v.as_bytes()));
            let _ = self.db.tx(|t| {
                t.exec("DELETE FROM sessions WHERE hash = $1", &[hash.into()])?;
                Ok(())
            });
        }
    }
}

/// The console's answer to `req` (a path under `/console`).
pub(crate) fn handle(
    server: &super::ManageServer,
    req: &Request<'_>,
    insecure_basic: bool,
) -> Response {
    let m = server.manager();
    let path = req.path();
    let method = req.method();
    if path == "/console/style.css" {
        return Response::new(200)
            .body("text/css; charset=utf-8", STYLE.as_bytes().to_vec())
            .header("Cache-Control", "public, max-age=3600");
    }
    // Forms come from our own pages only.
    if method == "POST" && super::server::cross_site(req) {
        return secure_headers(Response::text(403, "cross-site form refused\n"));
    }
    let body = std::str::from_utf8(req.body()).unwrap_or_default();
    let field = |n: &str| form_param(body, n).unwrap_or_default();
    if path == "/console/login" {
        if method == "POST" {
            if !req.is_tls() && !req.peer().ip().is_loopback() && !insecure_basic {
                return redirect("/console/login?err=Log+in+over+HTTPS");
            }
            let c = Credentials::Basic {
                user: field("user"),
                password: field("password"),
            };
            return match server
                .pipeline()
                .authenticate(m, &c, &req.peer().ip().to_string())
            {
                Ok(u) if u.admin => match m.new_session(&u) {
                    Ok(v) => {
                        let secure = if req.is_tls() { "; Secure" } else { "" };
                        redirect("/console/packages").header(
                            "Set-Cookie",
                            format!(
                                "sft_session={v}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                                SESSION_MS / 1000
                            ),
                        )
                    }
                    Err(_) => redirect("/console/login?err=Could+not+start+a+session"),
                },
                Ok(_) => redirect("/console/login?err=Administrators+only"),
                Err(e) => redirect(&format!("/console/login?err={}", enc(&e.to_string()))),
            };
        }
        let form = "<form method=\"post\" action=\"/console/login\" id=\"login\">\
            <p><label>User <input name=\"user\" id=\"user\" autocomplete=\"username\" required></label></p>\
            <p><label>Password <input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"current-password\" required></label></p>\
            <p><button type=\"submit\" id=\"submit\">Log in</button></p></form>";
        return page("Log in", None, &flash(req), form);
    }
    let Some(s) = m.session_of(req) else {
        return redirect("/console/login");
    };
    if method == "POST" {
        if !constant_time_eq(field("csrf").as_bytes(), s.csrf.as_bytes()) {
            return secure_headers(Response::text(403, "bad or missing form token\n"));
        }
        return post(m, req, &s, path, &field);
    }
    match path {
        "/console" | "/console/" => redirect("/console/packages"),
        "/console/packages" => packages(m, req, &s),
        "/console/applications" => applications(m, req, &s),
        "/console/groups" => groups(m, req, &s),
        "/console/licences" => licences(m, req, &s),
        "/console/policies" => policies(m, req, &s),
        "/console/administrators" => administrators(m, req, &s),
        "/console/reports" => reports(m, req, &s),
        "/console/reports/usage.csv" => match m.usage() {
            Ok(rows) => secure_headers(
                Response::new(200)
                    .body(
                        "text/csv; charset=utf-8",
                        super::usage_csv(&rows).into_bytes(),
                    )
                    .header("Content-Disposition", "attachment; filename=\"usage.csv\""),
            ),
            Err(e) => page(
                "Error",
                Some(&s),
                "",
                &format!("<p class=\"err\">{}</p>", esc(&e.to_string())),
            ),
        },
        _ => secure_headers(Response::text(404, "not found\n")),
    }
}

fn post(
    m: &Manager,
    req: &Request<'_>,
    s: &Session,
    path: &str,
    field: &dyn Fn(&str) -> String,
) -> Response {
    let back = |view: &str, r: Result<String, Error>| match r {
        Ok(msg) => redirect(&format!("/console/{view}?ok={}", enc(&msg))),
        Err(e) => redirect(&format!("/console/{view}?err={}", enc(&e.to_string()))),
    };
    match path {
        "/console/logout" => {
            m.end_session(req);
            redirect("/console/login?ok=Logged+out").header(
                "Set-Cookie",
                "sft_session=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
            )
        }
        "/console/packages/import" => {
            let sft = field("sft");
            let name = field("name");
            let opts = ImportOptions {
                name: (!name.trim().is_empty()).then(|| name.trim().to_owned()),
                sft: (!sft.trim().is_empty()).then(|| sft.trim().into()),
            };
            let src = field("source");
            back(
                "packages",
                m.import_package(std::path::Path::new(src.trim()), &opts)
                    .map(|p| format!("Imported {} version {}", p.name, p.version)),
            )
        }
        "/console/packages/delete" => {
            let p = field("package");
            back(
                "packages",
                m.delete_package(&p).map(|()| format!("Deleted {p}")),
            )
        }
        "/console/groups/add" => {
            let g = field("group");
            back(
                "groups",
                m.add_group(&g).map(|()| format!("Added group {g}")),
            )
        }
        "/console/groups/member" => {
            let (g, u) = (field("group"), field("user"));
            let r = if field("remove") == "1" {
                m.remove_member(&g, &u).map(|()| format!("{u} left {g}"))
            } else {
                m.add_member(&g, &u).map(|()| format!("{u} is in {g}"))
            };
            back("groups", r)
        }
        "/console/grant" => {
            let (g, p) = (field("group"), field("package"));
            let r = if field("revoke") == "1" {
                m.revoke(&g, &p).map(|()| format!("Revoked {p} from {g}"))
            } else {
                m.grant(&g, &p).map(|()| format!("Granted {p} to {g}"))
            };
            back("groups", r)
        }
        "/console/licences/set" => {
            let p = field("package");
            let kind = match field("kind").as_str() {
                "unlimited" => Ok(LicenceKind::Unlimited),
                "named" => Ok(LicenceKind::Named),
                "concurrent" => field("count")
                    .trim()
                    .parse::<u32>()
                    .map(LicenceKind::Concurrent)
                    .map_err(|_| Error::invalid("a concurrent licence needs a count")),
                other => Err(Error::invalid(format!("unknown licence kind `{other}`"))),
            };
            back(
                "licences",
                kind.and_then(|k| {
                    m.set_licence(&p, k)
                        .map(|()| format!("Licence of {p}: {k}"))
                }),
            )
        }
        "/console/policies/set" => {
            let (k, v) = (field("key"), field("value"));
            back(
                "policies",
                m.set_setting(&k, v.trim())
                    .map(|()| format!("{k} = {}", v.trim())),
            )
        }
        "/console/users/add" => {
            let u = field("user");
            let admin = field("admin") == "1";
            back(
                "administrators",
                m.add_user(&u, &field("password"), admin)
                    .map(|()| format!("Added user {u}")),
            )
        }
        "/console/users/admin" => {
            let u = field("user");
            let on = field("admin") == "1";
            if !on && u == s.user.name {
                return back(
                    "administrators",
                    Err(Error::invalid(
                        "you cannot remove your own administrator role",
                    )),
                );
            }
            back(
                "administrators",
                m.set_admin(&u, on)
                    .map(|()| format!("{u} is {}an administrator", if on { "" } else { "not " })),
            )
        }
        _ => secure_headers(Response::text(404, "not found\n")),
    }
}

fn fail(s: &Session, e: &Error) -> Response {
    page(
        "Error",
        Some(s),
        "",
        &format!("<p class=\"err\">{}</p>", esc(&e.to_string())),
    )
}

fn packages(m: &Manager, req: &Request<'_>, s: &Session) -> Response {
    let list = match m.packages() {
        Ok(l) => l,
        Err(e) => return fail(s, &e),
    };
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            vec![
                esc(&p.name),
                esc(&p.version),
                esc(&p.guid),
                esc(&p.version_guid),
                p.size.to_string(),
                esc(&p.licence.to_string()),
                esc(&p.groups.join(", ")),
                esc(&p.apps.join(", ")),
                format!(
                    "<form class=\"inline\" method=\"post\" action=\"/console/packages/delete\">{}<input type=\"hidden\" name=\"package\" value=\"{}\"><button type=\"submit\">Delete</button></form>",
                    csrf_field(s),
                    esc(&p.name)
                ),
            ]
        })
        .collect();
    let mut body = table(
        &[
            "Name",
            "Version",
            "GUID",
            "Version GUID",
            "Bytes",
            "Licence",
            "Groups",
            "Applications",
            "",
        ],
        &rows,
        "packages",
    );
    let _ = write!(
        body,
        "<fieldset><legend>Import a package</legend><form method=\"post\" action=\"/console/packages/import\" id=\"import\">{}\
         <p><label>Manifest or .sftb on this server <input name=\"source\" id=\"source\" size=\"60\" required></label></p>\
         <p><label>SFT (default: beside the manifest) <input name=\"sft\" id=\"sft\" size=\"60\"></label></p>\
         <p><label>Name (default: the manifest's) <input name=\"name\" id=\"name\"></label></p>\
         <p><button type=\"submit\" id=\"import-submit\">Import</button></p></form></fieldset>",
        csrf_field(s)
    );
    page("Packages", Some(s), &flash(req), &body)
}

fn applications(m: &Manager, req: &Request<'_>, s: &Session) -> Response {
    let rows =
        m.db.read(|t| t.query("SELECT name, manifest FROM packages ORDER BY name", &[]));
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return fail(s, &e),
    };
    let mut out = Vec::new();
    for r in rows {
        let Ok(man) = Manifest::parse(text(&r, 1).as_bytes()) else {
            continue;
        };
        for a in &man.apps.items {
            let ftas: Vec<String> = a
                .file_types
                .iter()
                .flat_map(|l| &l.items)
                .filter_map(|f| f.extension.clone())
                .collect();
            let shortcuts = a.shortcuts.as_ref().map_or(0, |l| l.items.len());
            out.push(vec![
                esc(a.name.as_deref().unwrap_or("")),
                esc(a.version.as_deref().unwrap_or("")),
                esc(&text(&r, 0)),
                esc(a.osd.as_deref().unwrap_or("")),
                esc(a.icon.as_deref().unwrap_or("")),
                shortcuts.to_string(),
                esc(&ftas.join(", ")),
            ]);
        }
    }
    let body = table(
        &[
            "Application",
            "Version",
            "Package",
            "OSD",
            "Icon",
            "Shortcuts",
            "File types",
        ],
        &out,
        "applications",
    );
    page("Applications", Some(s), &flash(req), &body)
}

fn groups(m: &Manager, req: &Request<'_>, s: &Session) -> Response {
    let list = match m.groups() {
        Ok(l) => l,
        Err(e) => return fail(s, &e),
    };
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|g| {
            vec![
                esc(&g.name),
                esc(&g.members.join(", ")),
                esc(&g.packages.join(", ")),
            ]
        })
        .collect();
    let mut body = table(&["Group", "Members", "Entitled packages"], &rows, "groups");
    let c = csrf_field(s);
    let _ = write!(
        body,
        "<fieldset><legend>Add a group</legend><form method=\"post\" action=\"/console/groups/add\" id=\"add-group\">{c}\
         <input name=\"group\" id=\"new-group\" required> <button type=\"submit\">Add</button></form></fieldset>\
         <fieldset><legend>Membership</legend><form method=\"post\" action=\"/console/groups/member\" id=\"member\">{c}\
         Group <input name=\"group\" required> User <input name=\"user\" required>\
         <select name=\"remove\"><option value=\"0\">add</option><option value=\"1\">remove</option></select>\
         <button type=\"submit\">Apply</button></form></fieldset>\
         <fieldset><legend>Entitle a group to a package</legend><form method=\"post\" action=\"/console/grant\" id=\"grant\">{c}\
         Group <input name=\"group\" id=\"grant-group\" required> Package <input name=\"package\" id=\"grant-package\" required>\
         <select name=\"revoke\" id=\"grant-action\"><option value=\"0\">grant</option><option value=\"1\">revoke</option></select>\
         <button type=\"submit\" id=\"grant-submit\">Apply</button></form></fieldset>"
    );
    page("Groups and entitlements", Some(s), &flash(req), &body)
}

fn licences(m: &Manager, req: &Request<'_>, s: &Session) -> Response {
    let (list, used) = match (m.packages(), m.leases_in_use()) {
        (Ok(l), Ok(u)) => (l, u),
        (Err(e), _) | (_, Err(e)) => return fail(s, &e),
    };
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            let n = used
                .iter()
                .find(|(n, _)| *n == p.name)
                .map_or(0, |(_, c)| *c);
            vec![esc(&p.name), esc(&p.licence.to_string()), n.to_string()]
        })
        .collect();
    let mut body = table(&["Package", "Licence", "Leases in use"], &rows, "licences");
    let _ = write!(
        body,
        "<fieldset><legend>Set a licence</legend><form method=\"post\" action=\"/console/licences/set\" id=\"licence\">{}\
         Package <input name=\"package\" required> <select name=\"kind\"><option>unlimited</option><option>concurrent</option><option>named</option></select>\
         Count <input name=\"count\" size=\"5\"> <button type=\"submit\">Set</button></form></fieldset>",
        csrf_field(s)
    );
    page("Application licences", Some(s), &flash(req), &body)
}

fn policies(m: &Manager, req: &Request<'_>, s: &Session) -> Response {
    let list = match m.settings() {
        Ok(l) => l,
        Err(e) => return fail(s, &e),
    };
    let rows: Vec<Vec<String>> = list.iter().map(|(k, v)| vec![esc(k), esc(v)]).collect();
    let mut body = table(&["Setting", "Value"], &rows, "policy");
    let _ = write!(
        body,
        "<fieldset><legend>Change a setting</legend><form method=\"post\" action=\"/console/policies/set\" id=\"policy-set\">{}\
         <select name=\"key\"><option>refresh_on_login</option><option>refresh_minutes</option><option>reporting</option>\
         <option>require_authorization_if_cached</option><option>lease_seconds</option></select>\
         <input name=\"value\" required> <button type=\"submit\">Set</button></form></fieldset>",
        csrf_field(s)
    );
    page("Provider policy", Some(s), &flash(req), &body)
}

fn administrators(m: &Manager, req: &Request<'_>, s: &Session) -> Response {
    let list = match m.users() {
        Ok(l) => l,
        Err(e) => return fail(s, &e),
    };
    let c = csrf_field(s);
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|u| {
            let (label, to) = if u.admin { ("Remove administrator", "0") } else { ("Make administrator", "1") };
            vec![
                esc(&u.name),
                if u.admin { "yes" } else { "no" }.to_owned(),
                esc(&u.groups.join(", ")),
                format!(
                    "<form class=\"inline\" method=\"post\" action=\"/console/users/admin\">{c}<input type=\"hidden\" name=\"user\" value=\"{}\"><input type=\"hidden\" name=\"admin\" value=\"{to}\"><button type=\"submit\">{label}</button></form>",
                    esc(&u.name)
                ),
            ]
        })
        .collect();
    let mut body = table(&["User", "Administrator", "Groups", ""], &rows, "users");
    let _ = write!(
        body,
        "<fieldset><legend>Add a user</legend><form method=\"post\" action=\"/console/users/add\" id=\"add-user\">{c}\
         User <input name=\"user\" required> Password <input type=\"password\" name=\"password\" autocomplete=\"new-password\" required>\
         <select name=\"admin\"><option value=\"0\">user</option><option value=\"1\">administrator</option></select>\
         <button type=\"submit\">Add</button></form></fieldset>"
    );
    page("Users and administrators", Some(s), &flash(req), &body)
}

fn reports(m: &Manager, req: &Request<'_>, s: &Session) -> Response {
    let (usage, util, audit, errors) = match (
        m.usage(),
        m.utilisation(),
        m.software_audit(),
        m.errors(200),
    ) {
        (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
        (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => return fail(s, &e),
    };
    let mut body = String::from("<h2>Application utilisation</h2>");
    body.push_str(&table(
        &["Application", "Launches", "Users", "Seconds"],
        &util
            .iter()
            .map(|r| {
                vec![
                    esc(&r.app),
                    r.launches.to_string(),
                    r.users.to_string(),
                    r.seconds.to_string(),
                ]
            })
            .collect::<Vec<_>>(),
        "utilisation",
    ));
    body.push_str("<h2>Usage</h2><p><a href=\"/console/reports/usage.csv\" id=\"usage-csv\">Download as CSV</a></p>");
    body.push_str(&table(
        &[
            "Launched",
            "Shut down",
            "User",
            "Host",
            "Application",
            "Version",
            "Server",
        ],
        &usage
            .iter()
            .rev()
            .take(500)
            .map(|r| {
                vec![
                    esc(&rfc3339(r.launched_ms)),
                    esc(&r.shutdown_ms.map(rfc3339).unwrap_or_default()),
                    esc(&r.user),
                    esc(&r.host),
                    esc(&r.app),
                    esc(&r.app_version),
                    esc(&r.server),
                ]
            })
            .collect::<Vec<_>>(),
        "usage",
    ));
    body.push_str("<h2>Software audit</h2>");
    body.push_str(&table(
        &["Host", "Package", "Version GUID", "% cached"],
        &audit
            .iter()
            .map(|(h, p, g, pct)| vec![esc(h), esc(p), esc(g), pct.to_string()])
            .collect::<Vec<_>>(),
        "audit",
    ));
    body.push_str("<h2>System errors</h2>");
    body.push_str(&table(
        &["When", "Kind", "User", "Detail"],
        &errors
            .iter()
            .map(|r| {
                vec![
                    esc(&rfc3339(r.at_ms)),
                    esc(&r.kind),
                    esc(&r.user),
                    esc(&r.detail),
                ]
            })
            .collect::<Vec<_>>(),
        "errors",
    ));
    page("Reports", Some(s), &flash(req), &body)
}

#[cfg(test)]
mod tests {
    use super::{constant_time_eq, esc};

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(esc("a\u{1b}[31m"), "a\u{fffd}[31m");
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
