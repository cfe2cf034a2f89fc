//! The arguments of `sft msi`.

#[allow(unused_imports)]
use super::*;

/// `sft msi --manifest M -o APP.msi [--with-sft | --sft-url URL]`, and
/// `sft msi --list APP.msi`.
#[derive(Debug, clap::Args)]
pub(crate) struct MsiArgs {
    /// The manifest to publish (with every OSD and icon it references
    /// under %SFT_MIME_SOURCE%, its folder).
    #[arg(long, value_name = "M", required_unless_present = "list")]
    pub manifest: Option<PathBuf>,
    /// Carry the SFT (a stand-alone MSI, MODE=STANDALONE), found through
    /// the manifest's PACKAGE HREF (or the first APP's OSD CODEBASE HREF)
    /// as a local file.
    #[arg(long, conflicts_with = "sft_url")]
    pub with_sft: bool,
    /// The SFT to carry, instead of the one the manifest names (implies
    /// --with-sft).
    #[arg(long, value_name = "PATH", conflicts_with = "sft_url")]
    pub sft: Option<PathBuf>,
    /// Where clients stream the SFT from: the default OVERRIDEURL
    /// (MODE=STREAMING; without it the manifest's HREF applies).
    #[arg(long, value_name = "URL")]
    pub sft_url: Option<String>,
    /// Make LOAD=TRUE the default: the package is loaded when installed.
    #[arg(long)]
    pub load: bool,
    /// The Manufacturer property (default: sft).
    #[arg(long, value_name = "NAME")]
    pub manufacturer: Option<String>,
    /// The client program the MSI's custom actions run (SFTCLIENT,
    /// default: sft.exe on PATH).
    #[arg(long, value_name = "PATH")]
    pub client: Option<String>,
    /// The MSI to write.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "APP.msi",
        required_unless_present = "list"
    )]
    pub output: Option<PathBuf>,
    /// Check an MSI and list its properties and the package's files.
    #[arg(long, value_name = "APP.msi", conflicts_with_all = ["manifest", "with_sft", "sft", "sft_url", "load", "output"])]
    pub list: Option<PathBuf>,
}
