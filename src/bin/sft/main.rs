//! `sft`: the command-line tool for SFT packages.
//!
//! Exit status: 0 on success (also when stdout is closed early, as in
//! `sft ls big.sft | head`), 1 on failure, 2 on a usage error.

#[macro_use]
mod macros {
    /// `println!` that returns the write's error instead of panicking: a
    /// closed stdout (`sft fetch … | head`) is a `BrokenPipe` error, which
    /// `main` treats as a quiet end.
    macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}
}

mod args;
mod cmd;
mod escape;
mod units;
mod util;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use util::UsageError;

fn main() -> ExitCode {
    // clap prints its own usage errors and exits with status 2.
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let no_mmap = cli.no_mmap;
    match cli.command {
        Command::Pack(a) => cmd::pack::run(&a),
        Command::Info(a) => cmd::info::run(&a, no_mmap),
        Command::Ls(a) => cmd::ls::run(&a, no_mmap),
        Command::Cat(a) => cmd::cat::run(&a, no_mmap),
        Command::Extract(a) => cmd::extract::run(&a, no_mmap),
        Command::Verify(a) => cmd::verify::run(&a, no_mmap),
        Command::Fetch(a) => cmd::fetch::run(&a),
        Command::Keygen(a) => cmd::sign::keygen(&a),
        Command::Sign(a) => cmd::sign::sign(&a),
        Command::Diff(a) => cmd::sign::diff(&a),
        Command::Patch(a) => cmd::sign::patch(&a),
        Command::Serve(a) => cmd::serve::run(&a),
        Command::Osd(a) => cmd::osd::run(&a),
        Command::Bundle(a) => cmd::bundle::run(&a),
        #[cfg(feature = "msi")]
        Command::Msi(a) => cmd::msi::run(&a),
        Command::Client(a) => cmd::client::run(&a),
        #[cfg(feature = "mount")]
        Command::Mount(a) => cmd::mount::run(&a),
        #[cfg(feature = "manage")]
        Command::Manage(a) => cmd::manage::run(&a),
        #[cfg(feature = "mount")]
        Command::Unmount(a) => cmd::mount::unmount(&a),
        #[cfg(feature = "mount")]
        Command::Trace(a) => cmd::mount::trace(&a),
    }
}

/// Print an error (with its whole chain) and choose the exit status.
fn report(e: &anyhow::Error) -> ExitCode {
    // Only a write to our own stdout that failed (the commands that print
    // as they go return it as it is); an EPIPE deeper in the chain (a
    // source's socket) is a failure like any other.
    let broken_pipe = e
        .downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe);
    if broken_pipe {
        // The reader went away (`sft ls | head`): not our failure.
        return ExitCode::SUCCESS;
    }
    // Names in the message (paths, sources, manifest names) may hold
    // control characters: escaped, never sent to the terminal raw.
    eprintln!("sft: error: {}", escape::safe(&util::chain_text(e)));
    if e.downcast_ref::<UsageError>().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}
