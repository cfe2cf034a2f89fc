//! `sft serve --http ADDR --content DIR`: the built-in content server.

/// `sft serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Serve HTTP (HTTPS with --tls-cert and --tls-key) on this address.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
}

pub(crate) fn run(_args: &ServeArgs) -> anyhow::Result<()> {
    anyhow::bail!("sft serve: not implemented yet")
}
