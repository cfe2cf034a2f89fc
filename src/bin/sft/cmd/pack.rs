//! `sft pack DIR -o OUT.sft [--publish DIR --app NAME=PATH[,ICON]… --href URL]`.

#[allow(unused_imports)]
use crate::args::*;
use std::io::Read;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use sft::read::Prologue;
use sft::write::{Compression, PackageBuilder, parse_launch_list};
use sft::{WriteOptions, format::Header};

use crate::args::{CompressionArg, PackArgs};
use crate::util::{UsageError, name_once, progress_bar, ratio, short};

/// `SOURCE_DATE_EPOCH`, if set: seconds since the Unix epoch.
fn source_date_epoch() -> anyhow::Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => {
            v.trim().parse::<i64>().map(Some).with_context(|| {
                format!("SOURCE_DATE_EPOCH `{v}` is not a whole number of seconds")
            })
        }
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("SOURCE_DATE_EPOCH is not valid UTF-8"),
    }
}

fn default_name(dir: &Path) -> String {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.or_else(|| {
        std::fs::canonicalize(dir)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    });
    name.filter(|n| !n.is_empty())
        .unwrap_or_else(|| "package".to_owned())
}

/// Count the files of a written package from its prologue alone.
fn count_files(path: &Path) -> anyhow::Result<u64> {
    let mut f = std::fs::File::open(path)?;
    let mut head = vec![0u8; sft::format::HEADER_LEN];
    f.read_exact(&mut head)?;
    let len = usize::try_from(Header::parse(&head)?.prologue_len)?;
    let mut pro = vec![0u8; len];
    pro[..head.len()].copy_from_slice(&head);
    f.read_exact(&mut pro[head.len()..])?;
    let pro = Prologue::parse(&pro)?;
    let mut n = 0;
    for e in pro.entries() {
        if e?.is_file() {
            n += 1;
        }
    }
    Ok(n)
}

/// One `--app NAME=PATH-IN-PACKAGE[,ICON]`.
#[derive(Debug)]
struct AppSpec {
    name: String,
    path: String,
    icon: Option<String>,
}

fn parse_app(s: &str) -> Result<AppSpec, UsageError> {
    let bad = || {
        UsageError(format!(
            "--app `{s}`: expected NAME=PATH-IN-PACKAGE[,ICON.ico]"
        ))
    };
    let (name, rest) = s.split_once('=').ok_or_else(bad)?;
    let (path, icon) = match rest.rsplit_once(',') {
        Some((p, i)) if i.to_ascii_lowercase().ends_with(".ico") => (p, Some(i.to_owned())),
        _ => (rest, None),
    };
    let (name, path) = (name.trim(), path.trim().trim_start_matches('/'));
    if name.is_empty() || path.is_empty() {
        return Err(bad());
    }
    Ok(AppSpec {
        name: name.to_owned(),
        path: path.to_owned(),
        icon,
    })
}

/// A name usable as a file name on Windows and Unix.
fn file_safe(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    let t = t.trim_matches(|c: char| c == '.' || c == ' ');
    if t.is_empty() {
        "app".to_owned()
    } else {
        t.to_owned()
    }
}

/// `file://` URL of an absolute path (space, `%`, `#`, `?` escaped).
fn file_url(path: &Path) -> String {
    let mut s = String::from("file://");
    for c in path.to_string_lossy().chars() {
        match c {
            ' ' => s.push_str("%20"),
            '%' => s.push_str("%25"),
            '#' => s.push_str("%23"),
            '?' => s.push_str("%3F"),
            c => s.push(c),
        }
    }
    s
}

/// Write the OSDs, icons and manifest for the package at `a.output`.
fn publish(a: &PackArgs, dir: &Path, apps: &[AppSpec]) -> anyhow::Result<()> {
    use sft::publish::{
        App, Codebase, Dependency, Implementation, List, Manifest, ManifestPackage, Osd,
        PackageRef, Policy, Shortcut, Text, Value, VirtualEnv, Vm, validate_icon,
    };
    let loaded = crate::util::Loaded::open(&a.output, false)?;
    let pkg = loaded.package()?;
    let meta = pkg.metadata();
    let size = std::fs::metadata(&a.output)?.len();
    // The content identity binds publishing to these exact bytes (v1.1).
    let content_id = pkg
        .prologue()
        .has_block_hashes()
        .then(|| pkg.prologue().content_id().to_string());
    let href = match &a.href {
        Some(h) if h.ends_with('/') || h.ends_with('\\') => {
            let file = a
                .output
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{h}{file}")
        }
        Some(h) => h.clone(),
        None => file_url(&std::fs::canonicalize(&a.output)?),
    };
    let pkg_name = meta.name().to_owned();
    let root = if meta.root().is_empty() {
        pkg_name.clone()
    } else {
        meta.root().to_owned()
    };
    let version = meta.version().to_string();
    let pkg_guid = meta.package_guid();
    let icons_dir_name = format!("{} Icons", file_safe(&pkg_name));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let mut manifest = Manifest {
        package: Some(ManifestPackage {
            name: Some(pkg_name.clone()),
            guid: Some(pkg_guid.to_string()),
            version_guid: Some(meta.version_guid().to_string()),
            version: Some(version.clone()),
            href: Some(href.clone()),
            size: Some(size),
            content_id: content_id.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut seen = std::collections::HashSet::new();
    for app in apps {
        if !pkg.find(&app.path)?.is_some_and(|e| e.is_file()) {
            anyhow::bail!(
                "--app {}: `{}` is not a file in the package",
                app.name,
                app.path
            );
        }
        let osd_file = format!("{}.osd", file_safe(&app.name));
        if !seen.insert(osd_file.to_ascii_lowercase()) {
            return Err(UsageError(format!(
                "--app {}: two applications would share `{osd_file}`",
                app.name
            ))
            .into());
        }
        let icon_ref = match &app.icon {
            None => None,
            Some(icon) => {
                let bytes = match std::fs::read(icon) {
                    Ok(b) => b,
                    Err(e) => match pkg.find(icon.trim_start_matches('/'))? {
                        Some(entry) if entry.is_file() => pkg.read_file(&entry)?,
                        _ => {
                            return Err(anyhow::Error::new(e).context(format!(
                                "--app {}: icon `{icon}` is neither a local file nor a file in the package",
                                app.name
                            )));
                        }
                    },
                };
                validate_icon(&bytes)
                    .with_context(|| format!("--app {}: icon `{icon}`", app.name))?;
                let base = Path::new(icon)
                    .file_name()
                    .map(|f| file_safe(&f.to_string_lossy()))
                    .unwrap_or_else(|| format!("{}.ico", file_safe(&app.name)));
                let icons = dir.join(&icons_dir_name);
                std::fs::create_dir_all(&icons)
                    .with_context(|| format!("cannot create `{}`", icons.display()))?;
                let target = icons.join(&base);
                std::fs::write(&target, &bytes)
                    .with_context(|| format!("cannot write `{}`", target.display()))?;
                Some(format!("%SFT_MIME_SOURCE%/{icons_dir_name}/{base}"))
            }
        };
        let win_path = app.path.replace('/', "\\");
        let work_dir = match win_path.rsplit_once('\\') {
            Some((d, _)) => format!("%SFT_MNT%\\{root}\\{d}"),
            None => format!("%SFT_MNT%\\{root}"),
        };
        let app_guid = uuid::Uuid::new_v5(
            &uuid::Uuid::from_bytes(*pkg_guid.as_bytes()),
            format!("app:{}", app.name).as_bytes(),
        );
        let shortcut = Shortcut {
            location: Some(format!("%CSIDL_STARTMENU%\\Programs\\{pkg_name}")),
            filename: Some(app.name.clone()),
            display: Some(app.name.clone()),
            icon: icon_ref.clone(),
            overridden: Some(false),
            ..Default::default()
        };
        let osd = Osd {
            guid: Some(sft::Guid(*app_guid.as_bytes()).to_string()),
            name: Some(app.name.clone()),
            version: Some(version.clone()),
            implementation: Some(Implementation {
                codebase: Some(Codebase {
                    href: Some(href.clone()),
                    guid: Some(pkg_guid.to_string()),
                    parameters: Some(String::new()),
                    filename: Some(format!("%SFT_MNT%\\{root}\\{win_path}")),
                    size: Some(size),
                    content_id: content_id.clone(),
                    ..Default::default()
                }),
                virtual_env: Some(VirtualEnv {
                    terminate_children: Some(false),
                    policies: Some(List::new(vec![Policy::new(
                        "LOCAL_INTERACTION_ALLOWED",
                        "FALSE",
                    )])),
                    env: Some(List::default()),
                    ..Default::default()
                }),
                working_dir: Some(Text::from(work_dir)),
                vm: Some(Vm {
                    value: Some("Win32".into()),
                    subsystem: Some(Value::new("windowed")),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            dependency: Some(Dependency {
                client_version: Some("4.6.0.0".into()),
                ..Default::default()
            }),
            package: Some(PackageRef {
                name: Some(pkg_name.clone()),
                ..Default::default()
            }),
            title: Some(Text::from(app.name.as_str())),
            abstract_text: (!meta.comment().is_empty()).then(|| Text::from(meta.comment())),
            shortcuts: Some(List::new(vec![shortcut.clone()])),
            ..Default::default()
        };
        let target = dir.join(&osd_file);
        std::fs::write(&target, osd.to_xml())
            .with_context(|| format!("cannot write `{}`", target.display()))?;
        manifest.apps.items.push(App {
            name: Some(app.name.clone()),
            version: Some(version.clone()),
            osd: Some(format!("%SFT_MIME_SOURCE%/{osd_file}")),
            icon: icon_ref,
            shortcuts: Some(List::new(vec![shortcut])),
            ..Default::default()
        });
    }
    let target = dir.join(format!("{}_manifest.xml", file_safe(&pkg_name)));
    std::fs::write(&target, manifest.to_xml())
        .with_context(|| format!("cannot write `{}`", target.display()))?;
    writeln!(
        std::io::stdout().lock(),
        "published {} applications into `{}`: manifest `{}`, CODEBASE HREF {href}",
        apps.len(),
        dir.display(),
        target.display()
    )?;
    Ok(())
}

/// Run `sft pack`.
pub fn run(a: &PackArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let apps = a
        .apps
        .iter()
        .map(|s| parse_app(s))
        .collect::<Result<Vec<_>, _>>()?;
    if a.publish.is_some() && apps.is_empty() {
        return Err(UsageError(
            "--publish needs at least one --app NAME=PATH-IN-PACKAGE".to_owned(),
        )
        .into());
    }
    // With --like: OLD's bytes, block size, codec and package GUID are
    // the defaults (the blocks of the two versions can only be equal
    // with the same block size, codec and level).
    let like = match &a.like {
        Some(p) => {
            let bytes =
                std::fs::read(p).with_context(|| format!("cannot read `{}`", p.display()))?;
            let pkg = sft::Package::parse(&bytes)
                .with_context(|| format!("--like `{}` is not a usable package", p.display()))?;
            let codec = pkg.index().ids().find_map(|id| {
                pkg.index()
                    .get(id)
                    .ok()
                    .map(|b| b.codec)
                    .filter(|c| *c != sft::Codec::Stored)
            });
            let c = match codec {
                Some(sft::Codec::Zstd) => CompressionArg::Zstd,
                Some(_) => CompressionArg::Zlib,
                None => CompressionArg::None,
            };
            let bs = sft::write::BlockSize::from_bytes(u64::from(pkg.block_size()))?;
            let guid = pkg.metadata().package_guid();
            Some((bytes, bs, c, guid))
        }
        None => None,
    };
    let block_size = a
        .block_size
        .or(like.as_ref().map(|l| l.1))
        .unwrap_or(sft::write::BlockSize::K64);
    let chosen = a
        .compression
        .or(like.as_ref().map(|l| l.2))
        .unwrap_or(CompressionArg::Zlib);
    let compression = match (chosen, a.level) {
        (CompressionArg::None, Some(_)) => {
            return Err(UsageError("--level needs --compression zlib or zstd".to_owned()).into());
        }
        (CompressionArg::None, None) => Compression::None,
        (CompressionArg::Zlib, Some(l)) if l > 9 => {
            return Err(UsageError(format!("--level {l}: zlib levels are 0-9")).into());
        }
        (CompressionArg::Zlib, l) => Compression::Zlib(l.unwrap_or(6)),
        (CompressionArg::Zstd, Some(0)) => {
            return Err(UsageError("--level 0: zstd levels are 1-22".to_owned()).into());
        }
        (CompressionArg::Zstd, l) => Compression::Zstd(l.map_or(19, |l| l as i32)),
    };
    let name = a.name.clone().unwrap_or_else(|| default_name(&a.dir));
    let mut opts = WriteOptions::default()
        .name(name)
        .block_size(block_size)
        .compression(compression)
        .block_hashes(!a.no_hashes)
        .full_load(a.full_load);
    if let Some(v) = a.package_version {
        opts = opts.version(v);
    }
    if let Some(r) = &a.root {
        opts = opts.root(r.clone());
    }
    if let Some(c) = &a.comment {
        opts = opts.comment(c.clone());
    }
    if let Some(g) = a.package_guid.or(like.as_ref().map(|l| l.3)) {
        opts = opts.package_guid(g);
    }
    if let Some(t) = a.threads {
        opts = opts.threads(t as usize);
    }
    if let Some(secs) = source_date_epoch()? {
        opts = opts.created(secs, 0);
    }

    // Like `--publish DIR` and `sft extract`, the output's directory is
    // created if missing (before the tree is read: fail fast).
    if let Some(parent) = a.output.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).with_context(|| {
            format!("cannot create the output directory `{}`", parent.display())
        })?;
    }
    let mut b = PackageBuilder::new(opts);
    if let (Some((bytes, ..)), Some(p)) = (&like, &a.like) {
        b.like(bytes)
            .with_context(|| format!("cannot read `{}` block by block", p.display()))?;
    }
    let tree = a.dir.display().to_string();
    b.add_tree(&a.dir)
        .map_err(|e| name_once(e, &tree, || format!("cannot pack `{tree}`")))?;
    let lists = a
        .launch_list
        .iter()
        .map(|list| {
            let text = std::fs::read_to_string(list)
                .with_context(|| format!("cannot read launch list `{}`", list.display()))?;
            parse_launch_list(&text)
                .with_context(|| format!("bad launch list `{}`", list.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    b.launch_lists(lists);
    let bar = progress_bar(b.total_size(), "packing");
    if let Some(bar) = &bar {
        let bar = bar.clone();
        b.on_progress(move |n| bar.inc(n));
    }
    let output = a.output.display().to_string();
    let report = b
        .write_to_path(&a.output)
        .map_err(|e| name_once(e, &output, || format!("cannot write `{output}`")))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let files = count_files(&a.output)
        .with_context(|| format!("cannot read back `{}`", a.output.display()))?;
    writeln!(
        std::io::stdout().lock(),
        "packed {files} files into `{}`: package {}, stored {} (ratio {:.3}), launch {}, {} blocks ({} FB1), {:.2} s",
        a.output.display(),
        short(report.package_size),
        short(report.stored_size),
        ratio(report.stored_size, report.package_size),
        short(report.launch_size),
        report.blocks,
        report.fb1_blocks,
        start.elapsed().as_secs_f64()
    )?;
    if let Some(dir) = &a.publish {
        publish(a, dir, &apps)?;
    }
    Ok(())
}
