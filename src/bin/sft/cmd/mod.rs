//! One module per subcommand.

pub mod cat;
pub mod extract;
pub mod info;
pub mod ls;
pub mod pack;
pub mod verify;
