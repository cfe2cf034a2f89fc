//! `sft client`.

/// `sft client`.
#[derive(Debug, clap::Args)]
pub(crate) struct ClientArgs {}

pub(crate) fn run(_args: &ClientArgs) -> anyhow::Result<()> {
    anyhow::bail!("sft client: not built yet")
}
