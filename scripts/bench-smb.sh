#!/usr/bin/env bash
# Issue 6 benchmark: SmbSource (what `sft fetch smb://` uses) against
# `smbclient get` of the same package from the same private smbd on
# 127.0.0.1 (started and stopped by the test harness in tests/smb.rs).
# Prints both best-of-N times and `ratio R PASS|FAIL` against 0.9.
#   MIB=256 RUNS=3 IN_FLIGHT=4 scripts/bench-smb.sh
# TODO(lead): once `sft fetch smb://` is wired, time the CLI here instead.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v smbd >/dev/null || { echo "SKIPPED: smbd not installed" >&2; exit 0; }
SFT_SMB_BENCH_MIB=${MIB:-256} SFT_SMB_BENCH_RUNS=${RUNS:-3} SFT_SMB_BENCH_IN_FLIGHT=${IN_FLIGHT:-4} \
  cargo test -q --release --features smb,write --test smb bench_fetch_vs_smbclient -- --ignored --nocapture \
  | grep -E '^(raw|package|ratio|server)'
