//! Fuzz the Windows Installer reader (`sft::bundle::msi`): arbitrary bytes
//! never panic and never allocate beyond the reader's limits; an MSI that
//! opens reads back every file it lists. Needs sft's `msi` feature.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sft::fuzzing::msi(data);
});
