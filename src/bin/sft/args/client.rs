//! The arguments of `sft client`.

#[allow(unused_imports)]
use super::*;

/// `sft client`.
#[derive(Debug, clap::Args)]
pub(crate) struct ClientArgs {
    /// The store folder (default: $SFT_CLIENT_STORE, else
    /// $XDG_DATA_HOME/sft/client, else ~/.local/share/sft/client).
    #[arg(long, value_name = "DIR", global = true)]
    pub store: Option<PathBuf>,

    /// The client command.
    #[command(subcommand)]
    pub command: ClientCommand,
}

/// Autoload triggers on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AutoLoadArg {
    /// No autoload (App-V's /AUTOLOADNEVER).
    Never,
    /// After a launch (/AUTOLOADONLAUNCH).
    Launch,
    /// After a publishing refresh (/AUTOLOADONREFRESH).
    Refresh,
    /// At login (/AUTOLOADONLOGIN).
    Login,
}

/// Autoload target on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TargetArg {
    /// Nothing (NONE).
    None,
    /// Packages used before (PREVUSED).
    Used,
    /// Everything (ALL).
    All,
}

/// What `query` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum QueryWhat {
    /// Packages (SFTMIME QUERY OBJ:PACKAGE).
    Packages,
    /// Applications (SFTMIME QUERY OBJ:APP).
    Apps,
    /// Publishing servers (SFTMIME QUERY OBJ:SERVER).
    Servers,
}

/// Package settings shared by add-package and configure-package.
#[derive(Debug, clap::Args)]
pub(crate) struct PackageFlags {
    /// The package's SFT location, instead of the manifest's HREF (App-V's
    /// OverrideURL); "" clears it.
    #[arg(long, value_name = "URL")]
    pub override_url: Option<String>,
    /// For all users.
    #[arg(long)]
    pub global: bool,
    /// Background-load triggers (recorded; `run` honours `launch`);
    /// `never` alone turns them off.
    #[arg(long, value_enum, num_args = 1.., value_name = "TRIGGER")]
    pub autoload: Option<Vec<AutoLoadArg>>,
    /// What autoload loads.
    #[arg(long, value_enum, value_name = "TARGET")]
    pub autoload_target: Option<TargetArg>,
}

/// How a load streams.
#[derive(Debug, clap::Args)]
pub(crate) struct LoadFlags {
    /// Options of the source: --limit-rate, --ca-file, --retry-for, SMB
    /// credentials.
    #[command(flatten)]
    pub source: SourceArgs,
}

/// `sft client` commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ClientCommand {
    /// Add a package record, or update its configuration (SFTMIME ADD PACKAGE).
    AddPackage {
        /// The package's name in the store.
        name: String,
        /// Its manifest.
        #[arg(long, value_name = "FILE")]
        manifest: PathBuf,
        #[command(flatten)]
        flags: PackageFlags,
    },
    /// Change a package's manifest, source or autoload (SFTMIME CONFIGURE PACKAGE).
    ConfigurePackage {
        /// The package (name or GUID).
        name: String,
        /// A new manifest (for the same package GUID).
        #[arg(long, value_name = "FILE")]
        manifest: Option<PathBuf>,
        #[command(flatten)]
        flags: PackageFlags,
    },
    /// Publish an added package for this user or all (SFTMIME PUBLISH PACKAGE).
    PublishPackage {
        /// The package (name or GUID).
        name: String,
        /// Its manifest.
        #[arg(long, value_name = "FILE")]
        manifest: PathBuf,
        /// For all users.
        #[arg(long)]
        global: bool,
    },
    /// Unpublish for this user or all (SFTMIME UNPUBLISH PACKAGE).
    UnpublishPackage {
        /// The package (name or GUID).
        name: String,
        /// For all users.
        #[arg(long)]
        global: bool,
    },
    /// Load the whole package into the store, synchronously, resuming (SFTMIME LOAD PACKAGE).
    LoadPackage {
        /// The package (name or GUID).
        name: String,
        /// Load from this SFT instead of the configured source (/SFTPATH).
        #[arg(long, value_name = "PATH")]
        sft_path: Option<String>,
        /// Stop once the package can launch (FB1 cached).
        #[arg(long)]
        launch_only: bool,
        /// Fetch only the prologue and print what the load would move:
        /// blocks cached, blocks an earlier version in the store holds,
        /// and the exact bytes to fetch.
        #[arg(long, conflicts_with = "launch_only")]
        dry_run: bool,
        #[command(flatten)]
        load: LoadFlags,
    },
    /// Remove a package's data; its records stay (SFTMIME UNLOAD PACKAGE).
    UnloadPackage {
        /// The package (name or GUID).
        name: String,
    },
    /// Remove a package, its data and records, for all users (SFTMIME DELETE PACKAGE).
    DeletePackage {
        /// The package (name or GUID).
        name: String,
    },
    /// Pin a package in the cache (SFTMIME LOCK APP).
    Lock {
        /// The package (name or GUID).
        name: String,
    },
    /// Unpin a package (SFTMIME UNLOCK APP).
    Unlock {
        /// The package (name or GUID).
        name: String,
    },
    /// List packages or applications (SFTMIME QUERY OBJ).
    Query {
        /// packages or apps.
        #[arg(value_enum)]
        what: QueryWhat,
        /// JSON (an array of objects; field names in docs/CLIENT.md).
        #[arg(long)]
        json: bool,
    },
    /// Show or change store settings: cache limit, ApplicationSourceRoot.
    ConfigureStore {
        /// Cache limit in bytes (k, M, G, T suffixes: powers of 1024), or
        /// `none`.
        #[arg(long, value_name = "SIZE")]
        cache_limit: Option<String>,
        /// ApplicationSourceRoot for every package's HREF, or `none`.
        #[arg(long, value_name = "ROOT")]
        app_source_root: Option<String>,
        /// Trust policy: only packages signed by these minisign public
        /// keys load (repeatable; replaces the list). Each load reads the
        /// signature at SOURCE.minisig and checks it before any block.
        #[arg(long, value_name = "KEY.pub")]
        trusted_key: Vec<PathBuf>,
        /// Trust policy off: forget every trusted key.
        #[arg(long, conflicts_with = "trusted_key")]
        no_trusted_keys: bool,
    },
    /// Run CMD with the package in use (the SFTTRAY /LAUNCH analogue):
    /// loads FB1 if needed, mounts the package (built with `mount`) on its
    /// mount point under the store and runs CMD there while the rest
    /// streams as it is read (and in the background with the `launch`
    /// autoload trigger); the package cannot be unloaded or evicted while
    /// CMD runs.
    Run {
        /// The package (name or GUID).
        name: String,
        #[command(flatten)]
        load: LoadFlags,
        /// Run CMD in this folder instead of the mount's root (the mount
        /// is in `SFT_MOUNT` either way).
        #[arg(long, value_name = "DIR")]
        cwd: Option<PathBuf>,
        /// Do not mount: CMD gets the package file's path in
        /// `SFT_CLIENT_PACKAGE` only (what `run` does without the `mount`
        /// feature).
        #[arg(long)]
        no_mount: bool,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Mount a package read-only for long-lived use (until SIGINT,
    /// SIGTERM or `sft client unmount DIR`): in use, streamed into the
    /// store as it is read.
    #[cfg(feature = "mount")]
    Mount {
        /// The package (name or GUID).
        name: String,
        /// An empty directory to mount it on.
        dir: PathBuf,
        /// What streams besides the blocks read: `all` or `none`.
        #[arg(long, value_enum, default_value = "all")]
        background: crate::args::Background,
        #[command(flatten)]
        load: LoadFlags,
    },
    /// Unmount what `sft client mount` mounted.
    #[cfg(feature = "mount")]
    Unmount {
        /// The mount point.
        dir: PathBuf,
    },
    /// Add and publish the package a .sftb bundle carries in one step
    /// (the sequencer MSI's MODE, OVERRIDEURL, LOAD).
    Install {
        /// The bundle (.sftb) or Windows Installer file (.msi).
        bundle: PathBuf,
        /// msiexec-style PROPERTY=VALUE: MODE (STANDALONE or STREAMING),
        /// OVERRIDEURL, LOAD (TRUE or FALSE); an empty value unsets it.
        /// Default: the MSI's Property table.
        #[arg(value_name = "PROPERTY=VALUE")]
        properties: Vec<String>,
        /// The package's SFT location (OVERRIDEURL).
        #[arg(long, value_name = "URL")]
        override_url: Option<String>,
        /// Load the package after publishing (LOAD=TRUE).
        #[arg(long)]
        load: bool,
        /// Do not load it, whatever the MSI's LOAD says (LOAD=FALSE).
        #[arg(long, conflicts_with = "load")]
        no_load: bool,
        /// For all users.
        #[arg(long)]
        global: bool,
        /// The package's name in the store (default: the manifest's PACKAGE NAME).
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Keep the rollback journal after a successful install, for
        /// --rollback or --commit (the MSI's custom actions).
        #[arg(long)]
        keep_rollback: bool,
        /// Undo the last install of this file that kept its journal: the
        /// package's record, descriptors and data as they were before.
        #[arg(long, conflicts_with_all = ["commit", "keep_rollback", "load", "override_url", "name"])]
        rollback: bool,
        /// Drop the journal the last install of this file kept.
        #[arg(long, conflicts_with_all = ["keep_rollback", "load", "override_url", "name"])]
        commit: bool,
        #[command(flatten)]
        flags: LoadFlags,
    },
    /// Add a publishing server (a Management Server), or change one
    /// (SFTMIME ADD SERVER); with --user, log in now and keep its token.
    AddServer {
        /// The server's name in the store.
        name: String,
        /// Its URL: http(s)://HOST[:PORT][/PATH].
        #[arg(long, value_name = "URL")]
        url: String,
        /// The user to log in as; the password is read from standard input.
        #[arg(long, value_name = "USER", requires = "password_stdin")]
        user: Option<String>,
        /// Read the password from standard input (first line).
        #[arg(long, requires = "user")]
        password_stdin: bool,
        /// Refresh at login (App-V's /REFRESH ON|OFF; default on).
        #[arg(long, value_name = "on|off", default_value = "on", value_parser = ["on", "off"])]
        refresh_on_login: String,
        /// CA file for an https:// server.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
    },
    /// Publishing refresh from a server: add, publish, upgrade and remove
    /// packages exactly as its answer says; a bad answer or a server that
    /// is down changes nothing (SFTMIME REFRESH SERVER).
    RefreshServer {
        /// The server.
        name: String,
        /// CA file for an https:// server.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
    },
    /// Forget a publishing server and its login; its packages stay
    /// (SFTMIME DELETE SERVER).
    DeleteServer {
        /// The server.
        name: String,
    },
}
