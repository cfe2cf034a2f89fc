//! The flags every command that takes a package shares (`sft fetch`,
//! `info`, `ls`, `cat`, `extract`, `verify`, `client load-package`):
//! SMB credentials, `--ca-file`, `--limit-rate`, `--retry-for`.
//!
//! There is deliberately no password flag: a password on the command line
//! is visible to every user of the machine in `ps` and `/proc/PID/cmdline`
//! (and lands in shell history). The password comes from the credentials
//! file or from `SFT_SMB_PASSWORD`.

#[allow(unused_imports)]
use crate::args::*;
use std::path::{Path, PathBuf};

use sft::fetch::SourceOptions;
use sft::fetch::probe::Probe;
#[cfg(feature = "smb")]
use sft::net::smb::SmbOptions;
use sft::read::Prologue;
use sft::stream::SessionConfig;

use crate::util::Loaded;

impl SourceArgs {
    /// The SMB options these flags ask for (the rest default; credentials
    /// not given here still come from the URL and the environment).
    #[cfg(feature = "smb")]
    pub(crate) fn smb_options(&self) -> SmbOptions {
        // The command line reads credentials from the environment too.
        let mut smb = SmbOptions::default().env_credentials(true);
        if let Some(u) = &self.smb_user {
            smb = smb.user(u);
        }
        if let Some(d) = &self.smb_domain {
            smb = smb.domain(d);
        }
        if let Some(f) = &self.smb_credentials {
            smb = smb.credentials_file(f);
        }
        smb
    }

    /// [`SourceOptions`] these flags ask for: the CA file for https:// and
    /// rtsps://, the SMB flags, the rate limit, and credentials from the
    /// environment as well as the URL.
    pub(crate) fn options(&self) -> SourceOptions {
        let mut http = sft::net::http::HttpOptions::default().env_credentials(true);
        let mut rtsp = sft::net::rtsp::RtspOptions::default();
        if let Some(ca) = &self.ca_file {
            http = http.ca_file(ca);
            rtsp = rtsp.ca_file(ca);
        }
        let options = SourceOptions::default()
            .http(http)
            .rtsp(rtsp)
            .limit_rate(self.limit_rate.unwrap_or(0));
        // Without the `smb` feature an smb:// source is refused by name
        // (`sft::fetch::local_path`); the flags have nothing to apply to.
        #[cfg(feature = "smb")]
        let options = options.smb(self.smb_options());
        options
    }
}

impl SourceArgs {
    /// The stream session these flags ask for (the request sizes come
    /// from the source: `RangeSource::preferred_limits`).
    pub(crate) fn session(&self) -> SessionConfig {
        let config = SessionConfig::default();
        match self.retry_for {
            Some(window) => config.retry_for(window),
            None => config,
        }
    }
}

/// What a PACKAGE argument names.
pub(crate) enum Spec<'a> {
    /// A local file (a path, or the path of a `file://` URL).
    Local(PathBuf),
    /// A URL that `sft::fetch` opens with a network transport.
    Remote(&'a str),
}

/// Classify `package`: a path or `file://` URL is a local file; a URL of a
/// transport this build has is remote; any other URL (`file://host/...`,
/// an unknown scheme) is an error that names it redacted, never a local
/// path to open (whose error would echo it raw).
pub(crate) fn classify(package: &Path) -> anyhow::Result<Spec<'_>> {
    let Some(spec) = package.to_str() else {
        return Ok(Spec::Local(package.to_path_buf()));
    };
    Ok(match sft::fetch::local_path(spec)? {
        Some(path) => Spec::Local(PathBuf::from(path)),
        None => Spec::Remote(spec),
    })
}

/// The last component of a (redacted) source, to see whether an error
/// already names it: library errors name a source in their own form
/// (`smb://host/share/x.sft` for `\\host\share\x.sft`, a default port
/// added).
pub(crate) fn file_name(shown: &str) -> &str {
    shown
        .trim_end_matches("?…")
        .rsplit(['/', '\\'])
        .find(|s| !s.is_empty())
        .unwrap_or(shown)
}

/// A package to inspect without its blocks: a local file (mapped or read
/// whole, as before), or the prologue of a remote one, read on its own
/// ([`sft::fetch::probe`]).
pub(crate) enum Inspected {
    Local(Loaded),
    Remote(Box<Probe>),
}

impl Inspected {
    /// Open `package`: a URL (smb://, UNC, http(s)://, rtsp(s)://) is
    /// probed with these flags' credentials; anything else is a local file.
    pub(crate) fn open(package: &Path, no_mmap: bool, args: &SourceArgs) -> anyhow::Result<Self> {
        match classify(package)? {
            Spec::Remote(spec) => {
                let options = args.options();
                let shown = sft::redact_url(spec);
                let probe = sft::fetch::probe::probe(spec, &options).map_err(|e| {
                    crate::util::name_once(e, file_name(&shown), || {
                        format!("cannot read the prologue of `{shown}`")
                    })
                })?;
                Ok(Inspected::Remote(Box::new(probe)))
            }
            Spec::Local(path) => Ok(Inspected::Local(Loaded::open(&path, no_mmap)?)),
        }
    }

    /// The prologue: metadata, entries, block index.
    pub(crate) fn prologue(&self) -> anyhow::Result<Prologue<'_>> {
        Ok(match self {
            Inspected::Local(l) => l.package()?.prologue(),
            Inspected::Remote(p) => p.prologue()?,
        })
    }

    /// The package's stored length in bytes.
    pub(crate) fn package_len(&self) -> u64 {
        match self {
            Inspected::Local(l) => l.package().map_or(0, |p| p.as_bytes().len() as u64),
            Inspected::Remote(p) => p.package_len(),
        }
    }
}
