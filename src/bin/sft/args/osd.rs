//! The arguments of `sft osd`.

#[allow(unused_imports)]
use super::*;

/// `sft osd`.
#[derive(Debug, clap::Args)]
pub(crate) struct OsdArgs {
    /// What to do with the OSD.
    #[command(subcommand)]
    pub command: OsdCommand,
}

/// `sft osd` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum OsdCommand {
    /// Print what an OSD file says: application, codebase, environment,
    /// scripts, shortcuts.
    Show(ShowArgs),
}

/// `sft osd show`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The OSD file.
    pub file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}
