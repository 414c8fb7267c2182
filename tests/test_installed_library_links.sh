#!/bin/sh
#   `make install DESTDIR=...` installs the header, the library, libchorus.pc
#   and the binaries; a program built with pkg-config links and runs against
#   that installed copy, and the library exports only the public API.
. "$srcdir/tests/tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest="$tmp/root"
$MAKE -s -C "$top_builddir" install DESTDIR="$dest" >"$tmp/install.log" 2>&1
ok $? "make install DESTDIR works" || diag "$(tail -20 "$tmp/install.log")"
prefix=$(sed -n 's/^prefix=//p' "$top_builddir/libchorus.pc")
header=$(find "$dest" -name chorus.h | head -1)
[ -n "$header" ]; ok $? "chorus.h installed"
! grep -qi jansson "$header"; ok $? "chorus.h does not bring jansson to its users"
pc=$(find "$dest" -name libchorus.pc | head -1)
[ -n "$pc" ]; ok $? "libchorus.pc installed"
so=$(find "$dest" -name 'libchorus.so.*' | head -1)
[ -n "$so" ]; ok $? "shared library installed"
[ -n "$(find "$dest" -name libchorus.a)" ]; ok $? "static library installed"
[ -x "$dest$prefix/bin/chorus" ] && [ -x "$dest$prefix/bin/chorus-coordinator" ]
ok $? "chorus and chorus-coordinator installed"

export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$($PKG_CONFIG --define-variable=prefix="$dest$prefix" --cflags --libs libchorus)
ok $? "pkg-config knows libchorus: $flags"
cflags=$($PKG_CONFIG --define-variable=prefix="$dest$prefix" --cflags libchorus)
case "$cflags" in *pgm*|*libxml2*|*nss*|*krb5*) ok 1 "its cflags carry no czmq dependencies ($cflags)";;
                  *) ok 0 "its cflags carry no czmq dependencies: $cflags";; esac
$CC $CFLAGS -o "$tmp/consumer" "$srcdir/tests/installed_consumer.c" $LDFLAGS $flags >"$tmp/cc.log" 2>&1
ok $? "a program builds with pkg-config's flags" || diag "$(cat "$tmp/cc.log")"
out=$(LD_LIBRARY_PATH=$(dirname "$so") "$tmp/consumer")
ok $? "it runs against the installed library: $out"
ldd_out=$(LD_LIBRARY_PATH=$(dirname "$so") ldd "$tmp/consumer" | grep libchorus)
case "$ldd_out" in *"$dest"*) ok 0 "it loaded the installed copy";;
                   *) ok 1 "it loaded the installed copy ($ldd_out)";; esac

#   The Python package is installed too, and loads the installed library
#   (found by its soname, as on a machine where ldconfig knows it)
pkg=$(find "$dest" -path '*/chorus/__init__.py' | head -1)
[ -n "$pkg" ] && [ -f "$(dirname "$pkg")/py.typed" ]
ok $? "the Python package chorus is installed, with py.typed: $pkg"
#   (a sanitize build's library needs libasan loaded first: Python has none)
preload=
ldd "$so" | grep -q libasan && preload=$(${CC:-cc} -print-file-name=libasan.so)
pyout=$(cd "$tmp" && env -u CHORUS_LIBRARY LD_LIBRARY_PATH=$(dirname "$so") \
    ${preload:+LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0} PYTHONPATH=$(dirname "$(dirname "$pkg")") /usr/bin/python3 -c '
import chorus, chorus._lib as lib
print(chorus.__file__, lib.lib._name, chorus.library_version())' 2>&1)
case "$pyout" in "$dest"*libchorus.so*) ok 0 "it imports and loads libchorus: $pyout";;
                 *) ok 1 "it imports and loads libchorus ($pyout)";; esac

#   chorus.h stands alone: it pulls in no czmq or ZeroMQ header
echo '#include <chorus.h>' > "$tmp/alone.c"
$CC -H -fsyntax-only -I"$(dirname "$header")" "$tmp/alone.c" 2>"$tmp/headers.log"
ok $? "chorus.h compiles on its own" || diag "$(cat "$tmp/headers.log")"
! grep -q 'czmq\|zmq\.h' "$tmp/headers.log"
ok $? "without any czmq or ZeroMQ header" || diag "$(grep 'czmq\|zmq' "$tmp/headers.log")"

#   Only chorus_* public symbols leave the shared library
exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBR]$/ {print $3}')
private=$(echo "$exported" | grep -v '^chorus_' | grep -v '^_' || true)
[ -z "$private" ]; ok $? "the shared library exports only chorus_ symbols" || diag "$private"
echo "$exported" | grep -q '^chorus_msg_'; [ $? -ne 0 ]
ok $? "the codec stays private"
done_testing
