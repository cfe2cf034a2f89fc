//! Running the `sft` binary.

use std::path::Path;
use std::process::{Command, Output};

/// Run `sft ARGS` and wait for it.
pub fn sft(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sft"))
        .args(args)
        .output()
        .unwrap()
}

/// `sft pack` of `fixtures/sample-app` as `Sample` into `out`, published
/// into `publish` with two applications (`Sample App` with the icon
/// `icon`, and `Spell`); `extra` options go before `--publish`.
pub fn pack_sample(out: &Path, publish: &Path, icon: &Path, extra: &[&str]) -> Output {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut args = vec![
        "pack".to_owned(),
        format!("{root}/fixtures/sample-app"),
        "-o".to_owned(),
        out.to_str().unwrap().to_owned(),
        "--name".to_owned(),
        "Sample".to_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args.extend([
        "--publish".to_owned(),
        publish.to_str().unwrap().to_owned(),
        "--app".to_owned(),
        format!("Sample App=bin/app.exe,{}", icon.display()),
        "--app".to_owned(),
        "Spell=bin/plugins/spell.dll".to_owned(),
    ]);
    Command::new(env!("CARGO_BIN_EXE_sft"))
        .args(args)
        .output()
        .unwrap()
}
