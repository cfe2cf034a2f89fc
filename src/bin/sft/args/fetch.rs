//! The arguments of `sft fetch`.

#[allow(unused_imports)]
use super::*;

/// `sft fetch`.
#[derive(Debug, clap::Args)]
pub(crate) struct FetchArgs {
    /// The package: a path, a file:// URL, an http:// or https:// URL
    /// (credentials in the URL or in SFT_HTTP_USER / SFT_HTTP_PASSWORD or
    /// SFT_HTTP_TOKEN; presigned query strings are kept as given), an
    /// rtsp(s):// URL, or a file on an SMB share: smb://[user@]host[:port]/
    /// share/path, \\host\share\path or file://\\host\share\path (credentials
    /// from the flags below, the URL, or SFT_SMB_USER / SFT_SMB_PASSWORD /
    /// SFT_SMB_DOMAIN). Or a local OSD file (*.osd) or manifest (*.xml):
    /// the package its CODEBASE HREF names, after %VAR% expansion
    /// (%SFT_MIME_SOURCE% defaults to the descriptor's directory) and the
    /// source roots below.
    pub source: String,

    /// Output package file (written atomically once complete).
    #[arg(short, long, value_name = "OUT.sft")]
    pub output: PathBuf,

    /// Stop once the package can launch (prologue and FB1 cached); a later
    /// run without it fetches the rest and writes OUT.
    #[arg(long)]
    pub launch_only: bool,

    /// Keep the partial file and its block bitmap in DIR instead of beside
    /// OUT (as OUT.partial and OUT.partial.blocks).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Simulate a link with this round-trip time in milliseconds (each
    /// request waits one round trip before its first byte); for
    /// benchmarks, with --limit-rate as the bandwidth.
    #[arg(long, value_name = "MS", hide = true)]
    pub simulate_rtt: Option<u64>,

    /// Do not fdatasync the partial file before recording blocks as
    /// present, nor the output before renaming it (like cp). A killed
    /// process loses nothing; after a power loss, blocks that never
    /// reached the disk fail their re-check on resume and are fetched
    /// again.
    #[arg(long)]
    pub no_fsync: bool,

    /// Check only each block's CRC-32 on arrival, not that zlib blocks
    /// inflate to their size (faster; `sft verify` checks everything).
    #[arg(long)]
    pub crc_only: bool,

    /// An earlier version of the package (a local package, or the output
    /// of an earlier fetch): blocks whose BLAKE3 hash it holds are copied
    /// from it, checked, and not fetched (docs/DELTA.md).
    #[arg(long, value_name = "OLD.sft")]
    pub base: Option<PathBuf>,

    /// OLD was checked in full when it was stored (an earlier `sft fetch`
    /// without --crc-only, or `sft verify`): blocks copied from it are
    /// checked by CRC-32 and BLAKE3 (which prove they are those bytes),
    /// not decoded again.
    #[arg(long, requires = "base")]
    pub base_checked: bool,

    /// Fetch nothing but the prologue: print what the fetch would move
    /// (blocks cached, copied from --base, and the exact bytes to fetch).
    #[arg(long)]
    pub dry_run: bool,

    /// With --dry-run: print the plan as JSON.
    #[arg(long, requires = "dry_run")]
    pub json: bool,

    /// Trust policy: accept only a package signed by this minisign public
    /// key (repeatable); an unsigned or wrongly signed package is refused
    /// before any block is used. The signature is SOURCE.minisig unless
    /// --signature says otherwise.
    #[arg(long, value_name = "KEY.pub")]
    pub trusted_key: Vec<PathBuf>,

    /// The package's detached signature: a file or URL (default:
    /// SOURCE.minisig, beside the package).
    #[arg(long, value_name = "SIG", requires = "trusted_key")]
    pub signature: Option<String>,

    /// Accept only the package with this content identity (`blake3:…`,
    /// as `sft info` prints it), whatever its signature.
    #[arg(long, value_name = "ID")]
    pub content_id: Option<String>,

    /// Where an OSD or manifest source's package is.
    #[command(flatten)]
    pub descriptor: DescriptorArgs,

    /// Credentials of remote sources.
    #[command(flatten)]
    pub remote: SourceArgs,
}

/// How an OSD or manifest source's CODEBASE is resolved (`sft fetch`,
/// `sft mount`).
#[derive(Debug, Args, Default)]
pub struct DescriptorArgs {
    /// With an OSD or manifest source: App-V's ApplicationSourceRoot,
    /// replacing the HREF's protocol://server:port (or \\computer\share,
    /// or drive) and prefixing its path.
    #[arg(long, value_name = "ROOT")]
    pub application_source_root: Option<String>,

    /// With an OSD or manifest source: the package's OverrideURL, used
    /// instead of the HREF and ApplicationSourceRoot.
    #[arg(long, value_name = "URL")]
    pub override_url: Option<String>,

    /// With an OSD or manifest source: an explicit package location
    /// (App-V's /SFTPATH), overriding everything else.
    #[arg(long, value_name = "PATH")]
    pub sftpath: Option<String>,
}
