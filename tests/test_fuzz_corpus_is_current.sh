#!/bin/sh
#   The fuzzer's seed corpus in the repository is what the codec encodes
#   today (regenerate with: tests/fuzz/make_corpus tests/fuzz/corpus).
. "$srcdir/tests/tap.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$top_builddir/tests/fuzz/make_corpus" "$tmp"
ok $? "make_corpus writes a corpus"
count=$(ls "$tmp" | wc -l)
[ "$count" -eq 28 ]; ok $? "28 seeds: all and required fields of 14 message types ($count)"
diff -r "$tmp" "$srcdir/tests/fuzz/corpus" >/dev/null
ok $? "the committed corpus matches the codec"
done_testing
