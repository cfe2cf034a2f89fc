//! Reading just a remote package's prologue (header, sections, directory),
//! for `sft info` and `sft ls` of a URL.
