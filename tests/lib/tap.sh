# TAP helpers for shell tests: source it, call check/expect_*, then finish.
# Each check prints "ok N - name" or "not ok N - name" with what was seen.
n_tap=0
n_failed=0
: "${LUPE_BIN:?LUPE_BIN must point at the lupe binary (tests/run sets it)}"
: "${LUPE_SHARED:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared}"
TAP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/lupe-sh-XXXXXX")
trap '[ -z "${LUPE_KEEP_TMP:-}" ] && rm -rf "$TAP_TMP"' EXIT

tap_ok() { n_tap=$((n_tap + 1)); echo "ok $n_tap - $1"; }
tap_fail() {
    n_tap=$((n_tap + 1)); n_failed=$((n_failed + 1))
    echo "not ok $n_tap - $1"
    shift
    for line in "$@"; do echo "#   $line"; done
}
# check NAME CONDITION-COMMAND...: passes when the command succeeds.
check() { local name=$1; shift; if "$@"; then tap_ok "$name"; else tap_fail "$name" "failed: $*"; fi; }
# expect_eq NAME WANT GOT
expect_eq() {
    if [ "$2" = "$3" ]; then tap_ok "$1"; else tap_fail "$1" "want: $2" "got:  $3"; fi
}
# expect_match NAME REGEX TEXT
expect_match() {
    if printf '%s' "$3" | grep -qE -- "$2"; then tap_ok "$1"; else tap_fail "$1" "want match: $2" "in: $(printf '%s' "$3" | head -c 2000)"; fi
}
finish() { echo "1..$n_tap"; [ "$n_failed" -eq 0 ]; }
