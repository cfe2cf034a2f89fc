//! Running the `sft` binary.

use std::process::{Command, Output};

/// Run `sft ARGS` and wait for it.
pub fn sft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sft"))
        .args(args)
        .output()
        .unwrap()
}
