//! The arguments of `sft manage` (feature `manage`).

#[allow(unused_imports)]
use super::*;

/// `sft manage`.
#[derive(Debug, clap::Args)]
pub(crate) struct ManageArgs {
    /// The store: `sqlite:PATH` or `postgres://USER@HOST:PORT/DB`
    /// (default: `sqlite:` a file `manage.db` beside --content). From
    /// `$SFT_MANAGE_DB` when not given: a URL with a password is then not
    /// in the process list.
    #[arg(
        long,
        value_name = "URL",
        global = true,
        env = "SFT_MANAGE_DB",
        hide_env_values = true
    )]
    pub db: Option<String>,
    /// The content folder: where imported SFTs go and what is streamed.
    #[arg(long, value_name = "DIR", global = true)]
    pub content: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: ManageCommand,
}

/// `sft manage` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ManageCommand {
    /// Run the Management Server: publishing refresh, reports, licences,
    /// the admin API and content, over HTTP and/or HTTPS.
    Serve(ManageServeArgs),
    /// Users (passwords are read from standard input).
    #[command(subcommand)]
    User(UserCommand),
    /// Groups and their members.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Packages: import, list, delete.
    #[command(subcommand)]
    Package(PackageCommand),
    /// Entitle GROUP to PACKAGE (every application in it).
    Grant {
        /// The group.
        group: String,
        /// The package, by name (`package list`).
        package: String,
    },
    /// Take PACKAGE away from GROUP.
    Revoke {
        /// The group.
        group: String,
        /// The package.
        package: String,
    },
    /// Licences: `licence set PACKAGE unlimited|concurrent N|named`.
    #[command(subcommand)]
    Licence(LicenceCommand),
    /// Provider policy settings (refresh, reporting, offline launches, leases).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Reports: usage, utilisation, audit, errors.
    #[command(subcommand)]
    Report(ReportCommand),
}

/// `sft manage serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ManageServeArgs {
    /// Serve plain HTTP on this address (e.g. 0.0.0.0:80, 127.0.0.1:0).
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Serve HTTPS on this address; needs --tls-cert and --tls-key.
    #[arg(long, value_name = "ADDR", requires = "tls_cert")]
    pub https: Option<String>,
    /// Stream package content over RTSP on this address (App-V's port
    /// is 554), with the same entitlement check; answers then send
    /// clients here for content.
    #[arg(long, value_name = "ADDR")]
    pub rtsp: Option<String>,
    /// Stream over RTSPS (RTSP over TLS; App-V's port is 322); needs
    /// --tls-cert and --tls-key. Preferred over --rtsp in answers.
    #[arg(long, value_name = "ADDR", requires = "tls_cert")]
    pub rtsps: Option<String>,
    /// PEM certificate chain for HTTPS and RTSPS (leaf first).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS and RTSPS.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The URL clients reach this server at, used in answers (behind a
    /// load balancer); default: each request's Host.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Accept HTTP Basic over plain HTTP from other machines (default:
    /// only over HTTPS or from this machine).
    #[arg(long)]
    pub insecure_basic: bool,
    /// Append the access log to FILE instead of standard error.
    #[arg(long, value_name = "FILE", conflicts_with = "no_access_log")]
    pub access_log: Option<PathBuf>,
    /// Do not write an access log.
    #[arg(long)]
    pub no_access_log: bool,
    /// Most connections served at once, per listener (default 256).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_connections: usize,
}

/// `sft manage user`.
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user; the password is the first line of standard input.
    Add {
        /// The user's name.
        name: String,
        /// Read the password from standard input (the only way: never
        /// on the command line, where other users can see it).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Make the user an administrator (admin API and console).
        #[arg(long)]
        admin: bool,
    },
    /// Set a user's password (from standard input); ends the user's tokens.
    Passwd {
        /// The user.
        name: String,
        /// Read the password from standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Add many users with existing Argon2 hashes: FILE (or - for
    /// standard input) has one `NAME:HASH` line per user (HASH a PHC
    /// string, as `user hash` prints); all or none.
    Import {
        /// The file, or `-`.
        file: PathBuf,
    },
    /// Print the Argon2id hash of the password on standard input (for
    /// `user import`).
    Hash {
        /// Read the password from standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Delete a user.
    Delete {
        /// The user.
        name: String,
    },
    /// List users.
    List {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `sft manage group`.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Add a group.
    Add {
        /// The group's name.
        group: String,
    },
    /// Delete a group (its grants and memberships go with it).
    Delete {
        /// The group.
        group: String,
    },
    /// Put USER in GROUP.
    AddMember {
        /// The group.
        group: String,
        /// The user.
        user: String,
    },
    /// Take USER out of GROUP.
    RemoveMember {
        /// The group.
        group: String,
        /// The user.
        user: String,
    },
    /// List groups with members and packages.
    List {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `sft manage package`.
#[derive(Debug, Subcommand)]
pub(crate) enum PackageCommand {
    /// Import a package from its manifest (OSDs and icons beside it) or
    /// a `.sftb` bundle; a new version of a package already here is
    /// published to clients at their next refresh.
    Import {
        /// The manifest, or a `.sftb` bundle.
        manifest: PathBuf,
        /// The SFT (default: the one the manifest's HREF names, beside
        /// it; or the one inside the bundle).
        #[arg(long, value_name = "PATH")]
        sft: Option<PathBuf>,
        /// The package's name (default: the manifest's PACKAGE NAME).
        #[arg(long)]
        name: Option<String>,
    },
    /// List packages (each one's name as grants use it).
    List {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Delete a package from the server.
    Delete {
        /// The package.
        name: String,
    },
}

/// `sft manage licence`.
#[derive(Debug, Subcommand)]
pub(crate) enum LicenceCommand {
    /// Set a package's licence: `unlimited`, `concurrent N` or `named`.
    Set {
        /// The package.
        package: String,
        /// `unlimited`, `concurrent` (then N) or `named`.
        kind: String,
        /// The number of concurrent licences.
        count: Option<u32>,
    },
    /// Give USER a named licence of PACKAGE.
    Assign {
        /// The package.
        package: String,
        /// The user.
        user: String,
    },
    /// Take USER's named licence of PACKAGE away.
    Unassign {
        /// The package.
        package: String,
        /// The user.
        user: String,
    },
}

/// `sft manage policy`.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Show every setting.
    Show,
    /// Set one: refresh_on_login, refresh_minutes, reporting,
    /// require_authorization_if_cached, lease_seconds.
    Set {
        /// The setting.
        key: String,
        /// Its value.
        value: String,
    },
}

/// `sft manage report`.
#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// Every application run clients reported.
    Usage {
        /// JSON.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// CSV with a header line.
        #[arg(long)]
        csv: bool,
    },
    /// Launches, users and time per application.
    Utilisation {
        /// JSON.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// CSV with a header line.
        #[arg(long)]
        csv: bool,
    },
    /// Which client holds which package version, how much cached.
    Audit {
        /// JSON.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// CSV with a header line.
        #[arg(long)]
        csv: bool,
    },
    /// Failed logins, refused licences, bad reports, imports (newest first).
    Errors {
        /// JSON.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// CSV with a header line.
        #[arg(long)]
        csv: bool,
    },
}
