//! `sft osd show FILE [--json]`: what an OSD descriptor says.

/// `sft osd`.
#[derive(Debug, clap::Args)]
pub(crate) struct OsdArgs {
    /// The OSD file.
    pub file: std::path::PathBuf,
}

pub(crate) fn run(_args: &OsdArgs) -> anyhow::Result<()> {
    anyhow::bail!("sft osd: not implemented yet")
}
