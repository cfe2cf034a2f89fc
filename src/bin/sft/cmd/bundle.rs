//! `sft bundle`.

/// `sft bundle`.
#[derive(Debug, clap::Args)]
pub(crate) struct BundleArgs {}

pub(crate) fn run(_args: &BundleArgs) -> anyhow::Result<()> {
    anyhow::bail!("sft bundle: not built yet")
}
