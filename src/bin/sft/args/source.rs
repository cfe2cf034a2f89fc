//! The arguments of `sft source` (the flags every command that takes a package shares).

#[allow(unused_imports)]
use super::*;

/// Credentials for `smb://` and UNC (`\\host\share\path`) sources.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct SourceArgs {
    /// SMB user (`user`, `DOMAIN\user` or `user@realm`) for smb:// and
    /// UNC sources; overrides the URL's `user@`, the credentials file and
    /// SFT_SMB_USER.
    #[arg(long, value_name = "USER")]
    pub smb_user: Option<String>,

    /// SMB (NTLM) domain; overrides the URL's `DOMAIN;user@`, the
    /// credentials file and SFT_SMB_DOMAIN.
    #[arg(long, value_name = "DOMAIN")]
    pub smb_domain: Option<String>,

    /// SMB credentials file in smbclient's -A format (`username = ...`,
    /// `password = ...`, `domain = ...`). The password is read only from
    /// here or from SFT_SMB_PASSWORD: a password flag would show in `ps`.
    #[arg(long, value_name = "FILE")]
    pub smb_credentials: Option<PathBuf>,

    /// Retry a server that is down or restarting (connection refused or
    /// lost, a time-out) for up to this long from the start of an outage,
    /// with pauses doubling from 0.1 s to 5 s (default 60s; 0: fail at
    /// once). A missing package or block fails at once.
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub retry_for: Option<std::time::Duration>,

    /// Trust the CA certificates in this PEM file for https:// and rtsps://
    /// sources (instead of the system's roots), like curl's --cacert.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Limit the transfer to this many bytes per second (k, M, G, T
    /// suffixes: powers of 1024), like curl's --limit-rate.
    #[arg(long, value_name = "RATE", value_parser = crate::units::parse_rate)]
    pub limit_rate: Option<u64>,
}
