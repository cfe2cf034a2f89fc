//! One module per subcommand.

pub(crate) mod bundle;
pub mod cat;
pub(crate) mod client;
#[cfg(feature = "mount")]
pub(crate) mod client_mount;
pub mod extract;
pub(crate) mod fetch;
pub mod info;
pub mod ls;
#[cfg(feature = "manage")]
pub(crate) mod manage;
#[cfg(feature = "mount")]
pub(crate) mod mount;
#[cfg(feature = "msi")]
pub(crate) mod msi;
pub(crate) mod osd;
pub mod pack;
pub(crate) mod serve;
pub(crate) mod sign;
pub(crate) mod source_args;
pub mod verify;
