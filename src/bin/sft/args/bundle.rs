//! The arguments of `sft bundle`.

#[allow(unused_imports)]
use super::*;

/// `sft bundle`: `create`, `ls`, `unpack`; the flag forms of the first
/// version (`--manifest … -o`, `--list`, `--unpack`) still work.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct BundleArgs {
    /// What to do (or the flags below, as before).
    #[command(subcommand)]
    pub command: Option<BundleCommand>,
    /// The manifest to bundle (with every OSD and icon it references under
    /// %SFT_MIME_SOURCE%, its folder).
    #[arg(long, value_name = "M")]
    pub manifest: Option<PathBuf>,
    /// Also carry the SFT (a stand-alone bundle), found through the
    /// manifest's PACKAGE HREF (or the first APP's OSD CODEBASE HREF) as a
    /// local file.
    #[arg(long)]
    pub with_sft: bool,
    /// The SFT to carry, instead of the one the manifest names (implies
    /// --with-sft).
    #[arg(long, value_name = "PATH")]
    pub sft: Option<PathBuf>,
    /// The bundle to write.
    #[arg(short = 'o', long = "output", value_name = "APP.sftb")]
    pub output: Option<PathBuf>,
    /// Check a bundle and list its entries (kind, bytes, CRC-32, offset, name).
    #[arg(long, value_name = "APP.sftb", conflicts_with_all = ["manifest", "with_sft", "sft", "output", "unpack"])]
    pub list: Option<PathBuf>,
    /// Check a bundle and unpack it into DIR (absent or empty), in the
    /// layout the manifest expects; prints the manifest's path there.
    #[arg(long, num_args = 2, value_names = ["APP.sftb", "DIR"], conflicts_with_all = ["manifest", "with_sft", "sft", "output"])]
    pub unpack: Option<Vec<PathBuf>>,
}

/// `sft bundle` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum BundleCommand {
    /// Write a bundle: the manifest, every OSD and icon it references
    /// (and, stand-alone, the SFT).
    Create {
        /// The manifest to bundle.
        #[arg(long, value_name = "M")]
        manifest: PathBuf,
        /// Also carry the SFT the manifest names (a stand-alone bundle).
        #[arg(long)]
        with_sft: bool,
        /// The SFT to carry, instead of the one the manifest names
        /// (implies --with-sft).
        #[arg(long, value_name = "PATH")]
        sft: Option<PathBuf>,
        /// The bundle to write.
        #[arg(short = 'o', long = "output", value_name = "APP.sftb")]
        output: PathBuf,
    },
    /// Check a bundle and list its entries (kind, bytes, CRC-32, offset,
    /// name).
    Ls {
        /// The bundle.
        bundle: PathBuf,
    },
    /// Check a bundle and unpack it into DIR (absent or empty), in the
    /// layout the manifest expects; prints the manifest's path there.
    Unpack {
        /// The bundle.
        bundle: PathBuf,
        /// The directory.
        dir: PathBuf,
    },
}
