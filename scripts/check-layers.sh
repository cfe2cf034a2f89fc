#!/usr/bin/env bash
# The layering guard (../ARCHITECTURE.md, lib.rs): an import may only point
# down the tiers  core → io → proto → net → app,  with serve beside net and
# write (the package writer: reads files, encodes on threads, writes
# atomically) on io.
# Checks `crate::` paths in every source file of each tier (doc comments and
# line comments are skipped), and I/O, threads and clocks in the tiers that
# must not have them. Prints every violation; exits 1 if there is one.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0

# code lines only: drop `//` comments (including doc comments)
code() { grep -nE "$2" $1 2>/dev/null | grep -vE '^[^:]+:[0-9]+:\s*//' ; }

forbid() { # tier-name, files, regex of forbidden paths
  local name=$1 files=$2 re=$3 hits
  hits=$(code "$files" "$re")
  if [ -n "$hits" ]; then
    echo "layering: $name must not use $re:" >&2
    echo "$hits" >&2
    fail=1
  fi
}

core="src/error.rs src/redact.rs src/prelude.rs src/format src/index.rs src/read src/stream"
io="src/io"
proto="src/proto"
net="src/net"
serve="src/serve"
app_mods='fetch|extract|publish|bundle|client|mount|manage|sign'

# The format layer reports leaf errors (format::errors) and never names the
# crate-wide Error, which wraps them: no error <-> format cycle.
forbid format "-r src/format" "crate::(error|Error)\b|crate::(index|read|write|stream)\b"
forbid index "src/index.rs" "crate::(read|write|stream)\b"
forbid read "-r src/read" "crate::stream\b"
forbid core "-r $core" "crate::(io|write|proto|net|serve|$app_mods)\b"
forbid io "-r $io" "crate::(write|proto|net|serve|$app_mods)\b"
forbid write "-r src/write" "crate::(proto|net|serve|$app_mods)\b"
forbid proto "-r $proto" "crate::(io|net|serve|$app_mods)\b"
forbid net "-r $net" "crate::(serve|$app_mods)\b"
forbid serve "-r $serve" "crate::(net|$app_mods)\b"
# Inside the application tier: only the client store ties fetch, bundle and
# publish together.
forbid fetch "-r src/fetch" "crate::(extract|publish|bundle|client|mount|manage)\b"
# Signatures sit under fetch and the client store: they use only the core.
forbid sign "src/sign.rs" "crate::(io|net|serve|fetch|extract|publish|bundle|client|mount|manage)\b"
forbid extract "src/extract.rs" "crate::(fetch|publish|bundle|client|mount|manage)\b"
forbid publish "-r src/publish" "crate::(fetch|extract|bundle|client|mount|manage)\b"
forbid bundle "-r src/bundle" "crate::(fetch|extract|client|mount|manage)\b"
forbid mount "-r src/mount" "crate::(extract|publish|bundle|client|manage)\b"
# The Management Server is a top of its own: it uses publish, bundle,
# fetch (paths of file:// HREFs) and serve, never the client store; and
# nothing below it, nor the client, uses it (they share the refresh
# protocol's documents through publish).
forbid manage "-r src/manage" "crate::(client|mount|extract)\b"
forbid client "-r src/client" "crate::manage\b"

# No files, sockets, threads or clocks in the core's readers and the
# sans-IO session (read/io.rs is the std::io::Read adapter over memory).
# Without the std feature the core is no_std, which the feature matrix
# (`cargo check --no-default-features`) proves by compiling.
forbid "core (no I/O, threads or clocks)" "-r src/format src/index.rs src/stream src/redact.rs" \
  'std::(io|net|fs|thread)\b|Instant::now|SystemTime::now|thread::spawn|thread::scope'
forbid "read (no files, sockets, threads or clocks)" "-r src/read --exclude=io.rs" \
  'std::(net|fs|thread)\b|Instant::now|SystemTime::now|thread::spawn|thread::scope'
forbid "proto (no I/O)" "-r $proto" 'std::(io|net|fs|thread)\b|Instant::now|SystemTime::now'

# unsafe only around the mmap.
unsafe_files=$(grep -rl 'allow(unsafe_code)' src || true)
if [ "$unsafe_files" != "src/io/mmap.rs" ]; then
  echo "allow(unsafe_code) must appear only in src/io/mmap.rs, found: $unsafe_files" >&2
  fail=1
fi
# A [patch] applies only to the workspace that declares it: crates that
# depend on sft would not get it, so the library never relies on one.
if grep -n '^\[patch' Cargo.toml >&2; then
  echo "Cargo.toml must not use [patch]: ship fixed crates under their own names (vendor/README.md)" >&2
  fail=1
fi
[ $fail = 0 ] && echo "layering: every tier imports only downward"
exit $fail
