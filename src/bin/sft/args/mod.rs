//! Command-line arguments. The names and flags here are a contract that
//! scripts rely on: change them only by adding.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod bundle;
mod client;
mod fetch;
#[cfg(feature = "manage")]
mod manage;
#[cfg(feature = "msi")]
mod msi;
mod osd;
mod serve;
mod source;

pub(crate) use bundle::*;
pub(crate) use client::*;
pub(crate) use fetch::*;
#[cfg(feature = "manage")]
pub(crate) use manage::*;
#[cfg(feature = "msi")]
pub(crate) use msi::*;
pub(crate) use osd::*;
pub(crate) use serve::*;
use sft::Guid;
use sft::write::BlockSize;
pub(crate) use source::*;

/// Pack, inspect, extract and verify SFT packages (App-V 4.x style).
#[derive(Debug, Parser)]
#[command(name = "sft", version, about, long_about = None, propagate_version = false)]
pub struct Cli {
    /// Read packages into memory instead of memory-mapping them.
    #[arg(long, global = true)]
    pub no_mmap: bool,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pack a directory tree into a package.
    Pack(PackArgs),
    /// Show a package's metadata and sizes.
    Info(InfoArgs),
    /// List a package's files and directories.
    Ls(LsArgs),
    /// Write one file's content to stdout.
    Cat(CatArgs),
    /// Extract all files into a directory.
    Extract(ExtractArgs),
    /// Check every checksum and decode every block.
    Verify(VerifyArgs),
    /// Fetch a package from a source into a local file, resumably.
    Fetch(FetchArgs),
    /// Make a minisign key pair for `sft sign` (KEY and KEY.pub).
    Keygen(KeygenArgs),
    /// Sign a package: a minisign signature over its prologue, which
    /// holds every block's BLAKE3 hash (PKG.minisig).
    Sign(SignArgs),
    /// Write a differential package (DSFT): NEW's prologue and the
    /// blocks OLD does not have.
    Diff(DiffArgs),
    /// Rebuild NEW from OLD and a DSFT, byte-identical, verified.
    Patch(PatchArgs),
    /// Serve package content to streaming clients (HTTP/HTTPS).
    Serve(ServeArgs),
    /// Read OSD descriptors (`sft osd show FILE [--json]`).
    Osd(OsdArgs),
    /// Write a `.sftb` bundle: manifest, OSDs, icons and optionally the SFT.
    Bundle(BundleArgs),
    /// Write a Windows Installer file (the sequencer's MSI): stand-alone
    /// (--with-sft) or streaming (--sft-url); or check one (--list).
    #[cfg(feature = "msi")]
    Msi(MsiArgs),
    /// The client package store: SFTMIME-style package commands.
    Client(ClientArgs),
    /// Mount a package read-only (FUSE) while it streams: its tree at
    /// once, blocks fetched as they are read, FB1 then the rest behind.
    #[cfg(feature = "mount")]
    Mount(MountArgs),
    /// The Management Server and its administration: users, groups,
    /// packages, grants, licences, policy, reports (`--features manage`).
    #[cfg(feature = "manage")]
    Manage(ManageArgs),
    /// Unmount what `sft mount` mounted.
    #[cfg(feature = "mount")]
    Unmount(UnmountArgs),
    /// Record a launch trace: pack DIR, mount it, run CMD from the mount,
    /// write the reads in order of first touch (for `sft pack
    /// --launch-trace`).
    #[cfg(feature = "mount")]
    Trace(TraceArgs),
}

/// `sft trace`.
#[cfg(feature = "mount")]
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The application's tree (what `sft pack DIR` would pack).
    pub dir: PathBuf,
    /// Where to write the trace (a launch list).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// The command to run from the mount: it runs in the mount's root
    /// (its path is also in `SFT_MOUNT`), e.g. `-- ./bin/java -version`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// `sft mount`.
#[cfg(feature = "mount")]
#[derive(Debug, Args)]
pub struct MountArgs {
    /// Package file, or the URL of one (http(s)://, rtsp(s)://, smb://,
    /// \\host\share\...).
    pub source: String,
    /// An empty directory to mount the package's tree on.
    pub mountpoint: PathBuf,
    /// Keep the streamed blocks here, as `<name>.partial` (where `sft fetch
    /// SOURCE -o <name> --cache-dir DIR` keeps its cache: a later mount or
    /// fetch of the package fetches only what is missing); default: a
    /// temporary directory removed at unmount.
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// What streams besides the blocks read: `all` (FB1 at once, then FB2
    /// in the background) or `none` (FB1, then only the blocks read).
    #[arg(long, value_enum, default_value = "all")]
    pub background: Background,
    /// Pace the background (FB2 no read waits on) to this many bytes per
    /// second (k, M, G suffixes: powers of 1024); reads are never held
    /// back behind it.
    #[arg(long, value_name = "RATE", value_parser = crate::units::parse_rate)]
    pub background_rate: Option<u64>,
    /// Record the reads, in order of first touch, and write them to FILE
    /// as a launch list at unmount (for `sft pack --launch-trace FILE`).
    #[arg(long, value_name = "FILE")]
    pub record_trace: Option<PathBuf>,
    /// Where an OSD or manifest source's package is.
    #[command(flatten)]
    pub descriptor: DescriptorArgs,
    /// Options of remote sources.
    #[command(flatten)]
    pub remote: SourceArgs,
}

/// `sft mount --background`.
#[cfg(feature = "mount")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Background {
    /// FB1 at once, then the rest of the package in the background.
    All,
    /// FB1 at once, then only the blocks that are read.
    None,
}

/// `sft unmount`.
#[cfg(feature = "mount")]
#[derive(Debug, Args)]
pub struct UnmountArgs {
    /// Where `sft mount` mounted a package.
    pub mountpoint: PathBuf,
}

/// Block compression chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// zlib (blocks that do not shrink are stored).
    Zlib,
    /// Store every block as is.
    None,
    /// Zstandard (codec 2, format v1.1): smaller than zlib and several
    /// times faster to unpack; App-V clients cannot read it.
    Zstd,
}

fn parse_block_size(s: &str) -> Result<BlockSize, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "4k" | "4096" => Ok(BlockSize::K4),
        "16k" | "16384" => Ok(BlockSize::K16),
        "32k" | "32768" => Ok(BlockSize::K32),
        "64k" | "65536" => Ok(BlockSize::K64),
        _ => Err("must be one of 4k, 16k, 32k, 64k".to_owned()),
    }
}

fn parse_guid(s: &str) -> Result<Guid, String> {
    s.parse::<Guid>().map_err(|_| {
        "expected a GUID like 6F9C0CD2-6B31-4A5E-9D34-6F7B2F0D4E11 (braces optional)".to_owned()
    })
}

/// `sft pack`.
#[derive(Debug, Args)]
pub struct PackArgs {
    /// Directory to pack; it becomes the package root.
    pub dir: PathBuf,

    /// Output package file (written atomically; its directory is created
    /// if missing).
    #[arg(short, long, value_name = "OUT.sft")]
    pub output: PathBuf,

    /// Block size: 4k, 16k, 32k or 64k (default 64k, or OLD's with
    /// --like).
    #[arg(long, value_name = "SIZE", value_parser = parse_block_size)]
    pub block_size: Option<BlockSize>,

    /// Block compression (default zlib, or OLD's with --like).
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,

    /// Compression level: zlib 0-9 (default 6), zstd 1-22 (default 19).
    #[arg(long, value_name = "LEVEL", value_parser = clap::value_parser!(u32).range(0..=22))]
    pub level: Option<u32>,

    /// Leave out the block hash section: write a v1.0 package (no BLAKE3
    /// block hashes, so no content identity, signatures or delta fetch).
    #[arg(long)]
    pub no_hashes: bool,

    /// An earlier version of this package: files and runs of bytes that
    /// are unchanged are laid out so that they fill whole blocks of the
    /// same content as in OLD, which a delta fetch (`sft fetch --base`,
    /// `sft diff`) then does not move again. Also takes OLD's package
    /// GUID, block size and compression unless given.
    #[arg(long, value_name = "OLD.sft")]
    pub like: Option<PathBuf>,

    /// Launch list: one `PATH` or `PATH:OFFSET:LENGTH` a line; those
    /// ranges go into feature block 1, in this order. `--launch-trace` is
    /// the same flag, for a trace recorded by `sft mount --record-trace`
    /// or `sft trace`. Given several times (launch profiles, several
    /// clients' traces), the lists are merged: they take turns by bytes,
    /// the one that has contributed the fewest bytes so far going next
    /// (docs/MOUNT.md).
    #[arg(
        long,
        visible_alias = "launch-trace",
        value_name = "FILE",
        conflicts_with = "full_load"
    )]
    pub launch_list: Vec<PathBuf>,

    /// Put all data in feature block 1 (like the Sequencer's /FULLLOAD).
    #[arg(long)]
    pub full_load: bool,

    /// Package name (default: the directory's name).
    #[arg(long, value_name = "N")]
    pub name: Option<String>,

    /// Package version number (default 1).
    #[arg(long = "version", value_name = "V")]
    pub package_version: Option<u32>,

    /// Root directory name (default: the package name).
    #[arg(long, value_name = "NAME")]
    pub root: Option<String>,

    /// Comment (published as the OSD ABSTRACT).
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,

    /// Package GUID (default: derived from the name).
    #[arg(long, value_name = "GUID", value_parser = parse_guid)]
    pub package_guid: Option<Guid>,

    /// Compression threads (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,

    /// Also write publishing files into DIR: one OSD per --app, the
    /// manifest (NAME_manifest.xml) and the icons (in "NAME Icons/").
    #[arg(long, value_name = "DIR")]
    pub publish: Option<PathBuf>,

    /// An application to publish (repeatable): its name, the program's
    /// path inside the package, and optionally an .ico file (a local
    /// file, else a path inside the package).
    #[arg(
        long = "app",
        value_name = "NAME=PATH-IN-PACKAGE[,ICON]",
        requires = "publish"
    )]
    pub apps: Vec<String>,

    /// The OSD CODEBASE HREF (rtsp://, http(s)://, file://, UNC…); one
    /// ending in `/` gets OUT's file name appended. Default: a file:// URL
    /// of OUT's absolute path.
    #[arg(long, value_name = "URL", requires = "publish")]
    pub href: Option<String>,
}

/// `sft info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Package file, or the URL of one (smb://, \\host\share\..., http(s)://,
    /// rtsp(s)://): only its prologue is read.
    pub package: PathBuf,
    /// Print one JSON object with exact numbers.
    #[arg(long)]
    pub json: bool,
    /// Credentials of remote sources.
    #[command(flatten)]
    pub remote: SourceArgs,
}

/// `sft ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Package file, or the URL of one (smb://, \\host\share\..., http(s)://,
    /// rtsp(s)://): only its prologue is read.
    pub package: PathBuf,
    /// Long format: kind, size, modification time, attributes (r hidden
    /// x system), feature block(s), path.
    #[arg(short = 'l', long = "long")]
    pub long: bool,
    /// Credentials of remote sources.
    #[command(flatten)]
    pub remote: SourceArgs,
}

/// `sft cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// Package file, or the URL of one (http(s)://, rtsp(s)://, smb://,
    /// \\host\share\...): only the prologue and the file's blocks are
    /// fetched (and FB1, streamed first).
    pub package: PathBuf,
    /// Path of the file inside the package (`/`-separated).
    pub path: String,
    /// Options of remote sources.
    #[command(flatten)]
    pub remote: SourceArgs,
}

/// `sft extract`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Package file, or the URL of one (http(s)://, rtsp(s)://, smb://,
    /// \\host\share\...): fetched (every block checked) into a temporary
    /// file beside DIR, extracted, then removed.
    pub package: PathBuf,
    /// Target directory (created if missing).
    pub dir: PathBuf,
    /// Fail instead of replacing files that already exist.
    #[arg(long)]
    pub no_overwrite: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Options of remote sources.
    #[command(flatten)]
    pub remote: SourceArgs,
}

/// `sft keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The secret key file to write (KEY.pub gets the public key).
    /// Neither is overwritten.
    #[arg(short, long, value_name = "KEY")]
    pub output: PathBuf,
}

/// `sft sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The package to sign.
    pub package: PathBuf,
    /// The minisign secret key (an encrypted one takes its password from
    /// $SFT_KEY_PASSWORD).
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// Where to write the signature (default: PKG.minisig).
    #[arg(short, long, value_name = "SIG")]
    pub output: Option<PathBuf>,
}

/// `sft diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The version a client has.
    pub old: PathBuf,
    /// The new version.
    pub new: PathBuf,
    /// The differential package to write.
    #[arg(short, long, value_name = "NEW.dsft")]
    pub output: PathBuf,
}

/// `sft patch`.
#[derive(Debug, Args)]
pub struct PatchArgs {
    /// The version the DSFT was made against.
    pub old: PathBuf,
    /// The differential package.
    pub dsft: PathBuf,
    /// The new version to write (atomically, verified).
    #[arg(short, long, value_name = "NEW.sft")]
    pub output: PathBuf,
}

/// `sft verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Package file, or the URL of one (http(s)://, rtsp(s)://, smb://,
    /// \\host\share\...): streamed and checked without being stored.
    pub package: PathBuf,
    /// Also require a signature by this minisign public key (repeatable)
    /// over the package's prologue, checked before any block.
    #[arg(long, visible_alias = "trusted-key", value_name = "KEY.pub")]
    pub key: Vec<PathBuf>,
    /// The signature file (default: PKG.minisig).
    #[arg(long, value_name = "SIG", requires = "key")]
    pub signature: Option<String>,
    /// Credentials of remote sources.
    #[command(flatten)]
    pub remote: SourceArgs,
}
