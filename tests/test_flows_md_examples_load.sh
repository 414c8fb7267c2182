#!/bin/sh
#   Every example flow in coordinator/FLOWS.md loads: each ```yaml block
#   that holds a flow goes into one directory (sub-flow examples name each
#   other), and chorus-coordinator --check, the coordinator's own loader,
#   accepts it. A broken example is found: the same check on a copy with
#   one example spoilt fails naming it.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

doc="$srcdir/coordinator/FLOWS.md"
mkdir "$tmp/examples"
awk -v dir="$tmp/examples" '
    /^```yaml$/ { inside = 1; n++; file = sprintf ("%s/example-%02d.yaml", dir, n); next }
    /^```$/     { inside = 0; next }
    inside      { print > file }
' "$doc"
#   Only the blocks that are flows: a fragment of one is no example
for file in "$tmp/examples"/*.yaml; do
    grep -q "^flow: " "$file" || rm "$file"
done
count=$(ls "$tmp/examples" | wc -l | tr -d ' ')
[ "$count" -ge 2 ]; ok $? "FLOWS.md holds $count example flows"
for name in fulfil_order quote_order process_bundle process_document process_page; do
    grep -lq "^flow: $name$" "$tmp/examples"/*.yaml; ok $? "the examples include $name"
done

out=$("$coordinator" --check "$tmp/examples" 2>&1); rc=$?
[ $rc -eq 0 ]; ok $? "chorus-coordinator --check loads every example ($rc): $out"

cp -r "$tmp/examples" "$tmp/spoilt"
first=$(ls "$tmp/spoilt"/*.yaml | head -1)
echo "retires: 3" >> "$first"
out=$("$coordinator" --check "$tmp/spoilt" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -q "$(basename "$first"):.*unknown field 'retires'"
ok $? "a spoilt example is refused, named ($rc): $out"
done_testing
