#!/bin/sh
#   chorus peers shows each peer's CURVE key and whether it was
#   authenticated: on a plaintext mesh, no key and not authenticated, in
#   the table (KEY '-', AUTH 'no') and in JSON (key null, authenticated
#   false), beside the columns it always had.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

start_hub
"$chorus" peers --wait 500 >"$tmp/table.out"; ok $? "peers lists the mesh"
head -1 "$tmp/table.out" | grep -qE \
    '^SERVICE +INSTANCE +ENDPOINT +STATE +LAST-SEEN +KEY +AUTH +SUBSCRIPTIONS$'
ok $? "under the headings it had, KEY and AUTH: $(head -1 "$tmp/table.out")"
awk '$1 == "hub" {print $7, $8}' "$tmp/table.out" >"$tmp/hub.cols"
[ "$(cat "$tmp/hub.cols")" = "- no" ]
ok $? "a plaintext peer has key '-', auth 'no' ($(cat "$tmp/hub.cols"))"
json=$("$chorus" peers --wait 500 --json | grep '"service":"hub"')
/usr/bin/python3 -c 'import json, sys
v = json.loads(sys.argv[1])
sys.exit(0 if v["key"] is None and v["authenticated"] is False and v["state"] == "alive"
         and v["endpoint"] == sys.argv[2] else 1)' "$json" "$hub"
ok $? "in JSON, key null and authenticated false, with the other fields: $json"
done_testing
