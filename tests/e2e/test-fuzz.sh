#!/usr/bin/env bash
# Fuzzing mbx-guardd's request parser (tests/fuzz/fuzz_guard_request.cpp) with
# libFuzzer from Debian's clang, under ASan and UBSan, for 30 seconds from the
# seed corpus in tests/fuzz/corpus: no crash, leak, hang or trap.
. "$(dirname "$0")/lib.sh"
e2e_init

command -v clang++ >/dev/null || fail "clang++ is missing (scripts/install-deps installs clang)"
capture_raw clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$REPO" "$REPO/tests/fuzz/fuzz_guard_request.cpp" "$REPO/src/guard_protocol.cpp" "$REPO/src/net_policy.cpp" \
  -o "$T/fuzz"
assert_rc 0 "building the fuzz target"
mkdir -p "$T/corpus"
cp "$REPO"/tests/fuzz/corpus/* "$T/corpus/"
capture_raw "$T/fuzz" -max_total_time=30 -timeout=5 -rss_limit_mb=1024 -artifact_prefix="$T/" "$T/corpus"
assert_rc 0 "30 s of fuzzing without a finding"
assert_match "$ERR" "^Done [0-9]+ runs in" "the fuzzer ran to its time limit"
e2e_done
