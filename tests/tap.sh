#   tap.sh — TAP helpers for the shell tests (sourced).
tap_n=0
#   Each test script runs its own mesh (see tests/testutil.h)
CHORUS_MESH=${CHORUS_MESH:-test-sh-$$}
export CHORUS_MESH
tap_failed=0
ok () {     # ok CONDITION-EXIT-CODE DESCRIPTION
    tap_n=$((tap_n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $tap_n - $2"
    else echo "not ok $tap_n - $2"; tap_failed=$((tap_failed + 1)); fi
    return "$1"
}
diag () { printf '%s\n' "$@" | sed 's/^/# /'; }
skip () { tap_n=$((tap_n + 1)); echo "ok $tap_n # SKIP $1"; }
done_testing () { echo "1..$tap_n"; [ "$tap_failed" -eq 0 ]; }
