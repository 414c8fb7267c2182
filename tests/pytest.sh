#   pytest.sh — runs pytest files of the Python binding (bindings/python/tests)
#   against this build's libchorus and chorus command, one TAP line per
#   pytest test (sourced after tap.sh, with the files as arguments). Under
#   the sanitize build the library is ASan-instrumented, so Python gets
#   libasan preloaded (leak checks off: the interpreter keeps memory of its
#   own until exit).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=${PYTHON:-python3}
if ! "$PY" -c 'import pytest' 2>/dev/null; then
    echo "not ok 1 - pytest is installed for $PY (Debian package python3-pytest)"
    echo "1..1"; exit 1
fi

CHORUS_LIBRARY="$top_builddir/.libs/libchorus.so"
CHORUS_TOOL="$top_builddir/tools/chorus"
CHORUS_HELPER="$top_builddir/tests/node_helper"
PYTHONPATH="$srcdir/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
export CHORUS_LIBRARY CHORUS_TOOL CHORUS_HELPER PYTHONPATH
if ldd "$CHORUS_LIBRARY" | grep -q libasan; then
    preload=$(${CC:-cc} -print-file-name=libasan.so)
    ubsan=$(${CC:-cc} -print-file-name=libubsan.so)
    [ -f "$ubsan" ] && preload="$preload $ubsan"
    LD_PRELOAD="$preload"
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    export LD_PRELOAD ASAN_OPTIONS
fi

tap=$(mktemp)
log=$(mktemp)
#   Nodes without a store make a temporary one under TMPDIR and remove it
#   as they stop; one the interpreter never stops, or a process a test
#   kills, cannot, so they make them here, removed with the run
TMPDIR=$(mktemp -d)
export TMPDIR
trap 'rm -rf "$tap" "$log" "$TMPDIR"' EXIT
for file in "$@"; do set -- "$@" "$srcdir/bindings/python/tests/$file"; shift; done
CHORUS_TAP="$tap" "$PY" -m pytest -p no:cacheprovider -q -rfE --tb=short "$@" >"$log" 2>&1
rc=$?
sed 's/^/# /' "$log"
n=$(grep -c '^\(not \)\{0,1\}ok' "$tap")
cat "$tap"
if [ $rc -ne 0 ] && ! grep -q '^not ok' "$tap"; then
    n=$((n + 1)); echo "not ok $n - pytest ran (exit $rc)"
fi
echo "1..$n"
