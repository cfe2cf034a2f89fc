//! Fuzz crashes, replayed: every file in `fixtures/regressions/` is named
//! `crash-<target>-<hash>` and must now run through its target's
//! `sft::fuzzing` entry point without panicking.

use crate::common::fixtures;
use crate::fuzz_corpus::{TARGETS, files, run_target};

fn replay(path: &std::path::Path) {
    let name = path.file_name().unwrap().to_str().unwrap();
    let rest = name
        .strip_prefix("crash-")
        .unwrap_or_else(|| panic!("{name}: regression files are named crash-<target>-<hash>"));
    let target = TARGETS
        .iter()
        .find(|t| rest.starts_with(&format!("{t}-")))
        .unwrap_or_else(|| panic!("{name}: unknown target"));
    let data = std::fs::read(path).unwrap();
    run_target(target, &data);
}

#[test]
fn all_regressions_replay() {
    for f in files(&fixtures().join("regressions")) {
        if f.file_name()
            .is_some_and(|n| n == "README.md" || n == ".gitkeep")
        {
            continue;
        }
        replay(&f);
    }
}
