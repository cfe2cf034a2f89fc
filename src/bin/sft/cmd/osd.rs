//! `sft osd show FILE [--json]`: what an OSD descriptor says.

#[allow(unused_imports)]
use crate::args::*;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use serde_json::{Value as Json, json};
use sft::publish::{Element, Extra, Node, Osd, ScriptBody};
use sft::redact_url;

use crate::escape::Safe;

/// Largest OSD file read (the parser's own limit).
const MAX_OSD: u64 = 4 << 20;

/// Read and parse an OSD file, refusing oversized input before reading it.
pub(crate) fn read_osd(path: &Path) -> anyhow::Result<Osd> {
    let bytes = read_bounded(path)?;
    Osd::parse(&bytes).with_context(|| format!("cannot parse OSD `{}`", path.display()))
}

/// Read a descriptor file of at most 4 MiB.
pub(crate) fn read_bounded(path: &Path) -> anyhow::Result<Vec<u8>> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?
        .len();
    if len > MAX_OSD {
        anyhow::bail!(
            "`{}` is {len} bytes; descriptors over {MAX_OSD} bytes are refused",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))
}

pub(crate) fn run(args: &OsdArgs) -> anyhow::Result<()> {
    match &args.command {
        OsdCommand::Show(a) => show(a),
    }
}

fn show(a: &ShowArgs) -> anyhow::Result<()> {
    let osd = read_osd(&a.file)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", crate::escape::json(&to_json(&osd))?)?;
    } else {
        out.write_all(to_text(&osd).as_bytes())?;
    }
    Ok(())
}

fn flag(b: Option<bool>) -> Json {
    b.map_or(Json::Null, Json::Bool)
}

fn unknown_names(x: &Extra) -> Vec<String> {
    let mut v: Vec<String> = x
        .attributes
        .iter()
        .map(|a| format!("@{}", a.name))
        .collect();
    v.extend(x.children.iter().filter_map(|n| match n {
        Node::Element(e) => Some(e.name.clone()),
        _ => None,
    }));
    v
}

fn element_json(e: &Element) -> Json {
    let attrs: serde_json::Map<String, Json> = e
        .attributes
        .iter()
        .map(|a| (a.name.clone(), Json::String(a.value.clone())))
        .collect();
    let children: Vec<Json> = e
        .children
        .iter()
        .filter_map(|n| match n {
            Node::Element(c) => Some(element_json(c)),
            Node::Text(t) => Some(Json::String(t.clone())),
            Node::Comment(_) => None,
        })
        .collect();
    json!({ "name": e.name, "attributes": attrs, "children": children })
}

fn to_json(osd: &Osd) -> Json {
    let imp = osd.implementation.as_ref();
    let cb = osd.codebase();
    let venv = imp.and_then(|i| i.virtual_env.as_ref());
    let codebase_json = |c: &sft::publish::Codebase| {
        json!({
            "href": c.href.as_deref().map(redact_url), "guid": c.guid, "parameters": c.parameters,
            "filename": c.filename, "sysguardfile": c.sysguardfile,
            "size": c.size, "mandatory": flag(c.mandatory),
        })
    };
    let dep = osd.dependency.as_ref();
    json!({
        "name": osd.name,
        "version": osd.version,
        "guid": osd.guid,
        "package": osd.package.as_ref().and_then(|p| p.name.clone()),
        "title": osd.title.as_ref().map(|t| t.value.clone()),
        "abstract": osd.abstract_text.as_ref().map(|t| t.value.clone()),
        "codebase": cb.map(codebase_json),
        "working_dir": imp.and_then(|i| i.working_dir.as_ref()).map(|t| t.value.clone()),
        "vm": imp.and_then(|i| i.vm.as_ref()).and_then(|v| v.value.clone()),
        "subsystem": imp.and_then(|i| i.vm.as_ref()).and_then(|v| v.subsystem.as_ref()).and_then(|s| s.value.clone()),
        "os": imp.map(|i| i.os.iter().filter_map(|o| o.value.clone()).collect::<Vec<_>>()).unwrap_or_default(),
        "terminate_children": flag(venv.and_then(|v| v.terminate_children)),
        "policies": venv.and_then(|v| v.policies.as_ref()).map(|l| {
            l.items.iter().map(|p| (p.name.clone(), Json::String(p.value.clone()))).collect::<serde_json::Map<_, _>>()
        }),
        "environment": venv.and_then(|v| v.env.as_ref()).map(|l| {
            l.items.iter().map(|e| json!({ "variable": e.variable, "value": e.value })).collect::<Vec<_>>()
        }),
        "dependencies": venv.and_then(|v| v.dependencies.as_ref()).map(|l| {
            l.items.iter().map(codebase_json).collect::<Vec<_>>()
        }),
        "client_version": dep.and_then(|d| d.client_version.clone()),
        "scripts": dep.map(|d| d.scripts.iter().map(|s| json!({
            "timing": s.timing.as_ref().map(|t| t.as_str().to_owned()),
            "event": s.event.as_ref().map(|e| e.as_str().to_owned()),
            "protect": flag(s.protect), "wait": flag(s.wait), "timeout": s.timeout,
            "success_result": s.success_result, "abort_result": s.abort_result,
            "scriptbody": match &s.body { Some(ScriptBody::Inline(t)) => Some(t.value.clone()), _ => None },
            "href": match &s.body { Some(ScriptBody::Href(t)) => Some(redact_url(&t.value)), _ => None },
        })).collect::<Vec<_>>()).unwrap_or_default(),
        "shortcuts": osd.shortcuts.as_ref().map(|l| l.items.iter().map(|s| json!({
            "location": s.location, "filename": s.filename, "display": s.display,
            "icon": s.icon, "overridden": flag(s.overridden),
        })).collect::<Vec<_>>()).unwrap_or_default(),
        "file_associations": osd.file_associations.as_ref().map(element_json),
        "unknown": unknown_names(&osd.extra),
    })
}

fn to_text(osd: &Osd) -> String {
    let mut s = String::new();
    // Every value came from the file: escaped for the terminal (one
    // value, one line, whatever it holds).
    let mut line = |k: &str, v: &str| {
        s.push_str(&format!("{k:<16}{}\n", Safe(v)));
    };
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    line("name:", &opt(&osd.name));
    line("version:", &opt(&osd.version));
    line("guid:", &opt(&osd.guid));
    if let Some(p) = &osd.package {
        line("package:", &opt(&p.name));
    }
    if let Some(t) = &osd.title {
        line("title:", &t.value);
    }
    if let Some(t) = &osd.abstract_text {
        line("abstract:", &t.value);
    }
    if let Some(c) = osd.codebase() {
        line("href:", &redact_url(&opt(&c.href)));
        line("package guid:", &opt(&c.guid));
        line("size:", &c.size.map(|n| n.to_string()).unwrap_or_default());
        line("filename:", &opt(&c.filename));
        line("parameters:", &opt(&c.parameters));
        line("sysguardfile:", &opt(&c.sysguardfile));
    }
    if let Some(i) = &osd.implementation {
        if let Some(w) = &i.working_dir {
            line("working dir:", &w.value);
        }
        if let Some(vm) = &i.vm {
            let sub = vm
                .subsystem
                .as_ref()
                .and_then(|s| s.value.clone())
                .unwrap_or_default();
            line("vm:", &format!("{} ({sub})", opt(&vm.value)));
        }
        let os: Vec<String> = i.os.iter().filter_map(|o| o.value.clone()).collect();
        line(
            "os:",
            &if os.is_empty() {
                "any".to_owned()
            } else {
                os.join(", ")
            },
        );
        if let Some(v) = &i.virtual_env {
            for p in v.policies.iter().flat_map(|l| &l.items) {
                line("policy:", &format!("{}={}", p.name, p.value));
            }
            for e in v.env.iter().flat_map(|l| &l.items) {
                line("env:", &format!("{}={}", opt(&e.variable), e.value));
            }
            for d in v.dependencies.iter().flat_map(|l| &l.items) {
                let m = if d.mandatory == Some(true) {
                    " (mandatory)"
                } else {
                    ""
                };
                line("dependency:", &format!("{}{m}", redact_url(&opt(&d.href))));
            }
        }
    }
    if let Some(d) = &osd.dependency {
        if let Some(v) = &d.client_version {
            line("client version:", v);
        }
        for sc in &d.scripts {
            let mut desc = format!(
                "{} {}",
                sc.timing.as_ref().map_or("", |t| t.as_str()),
                sc.event.as_ref().map_or("", |e| e.as_str())
            );
            if sc.protect == Some(true) {
                desc.push_str(", protected");
            }
            if sc.wait == Some(true) {
                desc.push_str(", wait");
            }
            if let Some(t) = sc.timeout {
                desc.push_str(&format!(", timeout {t} s"));
            }
            match &sc.body {
                Some(ScriptBody::Inline(_)) => desc.push_str(", inline body"),
                Some(ScriptBody::Href(h)) => {
                    desc.push_str(&format!(", href {}", redact_url(&h.value)))
                }
                None => {}
            }
            line("script:", &desc);
        }
    }
    for sc in osd.shortcuts.iter().flat_map(|l| &l.items) {
        line(
            "shortcut:",
            &format!("{} in {}", opt(&sc.display), opt(&sc.location)),
        );
    }
    let unknown = unknown_names(&osd.extra);
    if !unknown.is_empty() {
        line("unknown:", &unknown.join(", "));
    }
    s
}
