#!/bin/sh
#   chorus keygen writes a public and a private (0600) certificate whose
#   metadata is what the library reads, refuses to overwrite them, shows
#   what a certificate holds without its secret key, and writes files that
#   another ZeroMQ tool (pyzmq) reads.
. "$srcdir/tests/tap.sh"
chorus="$top_builddir/tools/chorus"
python=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
keys="$tmp/keys/new"

#   json_get JSON EXPRESSION: prints EXPRESSION of the parsed value v
json_get () { "$python" -c "import json, sys; v = json.loads(sys.argv[1]); print($2)" "$1"; }

"$chorus" keygen payments --service payments --publish order. --publish payment. \
    --call shipping.ship --call billing --dir "$keys" >"$tmp/made.out"
ok $? "keygen makes a key in a directory it creates"
[ -f "$keys/payments.cert" ] && [ -f "$keys/payments.cert_secret" ]
ok $? "as NAME.cert and NAME.cert_secret"
[ "$(stat -c %a "$keys/payments.cert_secret")" = 600 ]
ok $? "the secret certificate is mode 0600 ($(stat -c %a "$keys/payments.cert_secret"))"
[ "$(stat -c %a "$keys")" = 700 ]; ok $? "the directory it made is private"
! grep -q secret-key "$keys/payments.cert"; ok $? "the public certificate has no secret key"
grep -q '^    secret-key = "' "$keys/payments.cert_secret"; ok $? "the secret one has it"
secret=$(sed -n 's/^ *secret-key = "\(.*\)"$/\1/p' "$keys/payments.cert_secret")

for file in payments.cert payments.cert_secret; do
    grep -qx '    name = "payments"' "$keys/$file" \
        && grep -qx '    service = "payments"' "$keys/$file" \
        && grep -qx '    publish = "order. payment."' "$keys/$file" \
        && grep -qx '    call = "shipping.ship billing"' "$keys/$file"
    ok $? "$file holds name, service, publish and call as given"
done

"$chorus" keygen plain --dir "$keys" >/dev/null; ok $? "a key without options"
! grep -qE '^ +(service|publish|call) =' "$keys/plain.cert"
ok $? "has no service, publish nor call metadata: it may do anything"

#   --show, as text and as JSON
"$chorus" keygen --show "$keys/payments.cert" >"$tmp/show.out"; ok $? "--show reads a public file"
key=$(awk '$1 == "key" {print $2}' "$tmp/show.out")
[ ${#key} -eq 40 ]; ok $? "and prints its key ($key)"
[ "$(awk '$1 == "key" {print $2}' "$tmp/made.out")" = "$key" ]
ok $? "the key keygen printed when it made it"
grep -qx 'name  *payments' "$tmp/show.out" && grep -qx 'service  *payments' "$tmp/show.out" \
    && grep -qx 'publish  *order\. payment\.' "$tmp/show.out" \
    && grep -qx 'call  *shipping\.ship billing' "$tmp/show.out"
ok $? "and its metadata"
grep -qx 'secret  *no' "$tmp/show.out"; ok $? "and that the file holds no secret key"
"$chorus" keygen --show "$keys/payments.cert_secret" >"$tmp/show_secret.out"
grep -qx 'secret  *yes' "$tmp/show_secret.out"; ok $? "--show says a secret file holds one"
! grep -qF "$secret" "$tmp/show_secret.out"; ok $? "and does not print it"

json=$("$chorus" keygen --show "$keys/payments.cert" --json); ok $? "--show --json"
[ "$(json_get "$json" 'v["key"]')" = "$key" ]; ok $? "gives the same key"
[ "$(json_get "$json" 'v["secret"] is False')" = True ]; ok $? "and secret false"
[ "$(json_get "$json" 'v["metadata"] == {"name": "payments", "service": "payments",
     "publish": "order. payment.", "call": "shipping.ship billing"}')" = True ]
ok $? "and exactly the metadata given: $json"
json=$("$chorus" keygen --show "$keys/payments.cert_secret" --json)
[ "$(json_get "$json" 'v["secret"] is True')" = True ]; ok $? "secret true for the secret file"
! echo "$json" | grep -qF "$secret"; ok $? "whose secret key it does not print"
json=$("$chorus" keygen --show "$keys/plain.cert" --json)
[ "$(json_get "$json" 'v["metadata"] == {"name": "plain"}')" = True ]
ok $? "a key without options has only its name: $json"

#   Another ZeroMQ tool reads the files
pykey=$("$python" -c 'import sys, zmq.auth
public, secret = zmq.auth.load_certificate(sys.argv[1])
print(public.decode())' "$keys/payments.cert")
[ "$pykey" = "$key" ]; ok $? "pyzmq reads the public key --show prints ($pykey)"
pysecret=$("$python" -c 'import sys, zmq.auth
public, secret = zmq.auth.load_certificate(sys.argv[1])
print(public.decode(), secret.decode())' "$keys/payments.cert_secret")
[ "$pysecret" = "$key $secret" ]; ok $? "and the key pair from the secret file"

#   Existing files are kept unless --force
"$chorus" keygen payments --dir "$keys" >/dev/null 2>"$tmp/again.err"; rc=$?
[ $rc -eq 1 ]; ok $? "a second keygen of the same NAME fails (exit $rc)"
grep -q "$keys/payments.cert.*exists" "$tmp/again.err"
ok $? "naming the file: $(cat "$tmp/again.err")"
[ "$("$chorus" keygen --show "$keys/payments.cert" | awk '$1 == "key" {print $2}')" = "$key" ]
ok $? "and leaves the key as it was"
rm "$keys/plain.cert_secret"
"$chorus" keygen plain --dir "$keys" >/dev/null 2>"$tmp/half.err"; rc=$?
[ $rc -eq 1 ] && grep -q "plain.cert'* exists" "$tmp/half.err"
ok $? "one file of the pair is enough to refuse: $(cat "$tmp/half.err")"
chmod 644 "$keys/payments.cert_secret"
"$chorus" keygen payments --dir "$keys" --force >/dev/null; ok $? "--force replaces them"
[ "$("$chorus" keygen --show "$keys/payments.cert" | awk '$1 == "key" {print $2}')" != "$key" ]
ok $? "with a new key"
[ "$(stat -c %a "$keys/payments.cert_secret")" = 600 ]
ok $? "and a secret file that is 0600 again, whatever the old one was"
(umask 0; "$chorus" keygen open --dir "$keys" >/dev/null)
[ "$(stat -c %a "$keys/open.cert_secret")" = 600 ] && [ "$(stat -c %a "$keys/open.cert")" = 644 ]
ok $? "under umask 0 too, the secret file is 0600 and the public one 0644"
[ -z "$(find "$keys" -name '.*' ! -name "$(basename "$keys")")" ]
ok $? "no temporary file is left behind"

#   Refusals
for name in "" "a/b" "two words" "$(printf '%065d' 0)"; do
    "$chorus" keygen "$name" --dir "$keys" >/dev/null 2>"$tmp/bad.err"; rc=$?
    [ $rc -eq 2 ] && grep -q "not a certificate name" "$tmp/bad.err"
    ok $? "NAME '$name' is refused as bad usage (exit $rc)"
done
"$chorus" keygen svc --service 'two words' --dir "$keys" >/dev/null 2>"$tmp/bad.err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--service 'two words' is not a service name" "$tmp/bad.err"
ok $? "a bad --service is refused (exit $rc): $(head -1 "$tmp/bad.err")"
"$chorus" keygen svc --service a --service b --dir "$keys" >/dev/null 2>"$tmp/bad.err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--service given twice" "$tmp/bad.err"
ok $? "so is --service twice (exit $rc)"
"$chorus" keygen svc --publish 'say "hi"' --dir "$keys" >/dev/null 2>"$tmp/bad.err"; rc=$?
[ $rc -eq 2 ]; ok $? "and a prefix a certificate cannot hold (exit $rc)"
[ ! -e "$keys/svc.cert" ] && [ ! -e "$keys/svc.cert_secret" ]; ok $? "none of them wrote a file"
"$chorus" keygen --show "$tmp/none.cert" >/dev/null 2>"$tmp/bad.err"; rc=$?
[ $rc -ne 0 ] && grep -q "$tmp/none.cert" "$tmp/bad.err"
ok $? "--show of a missing file fails (exit $rc), naming it: $(cat "$tmp/bad.err")"
printf 'root:x:0:0\n' >"$tmp/passwd"
"$chorus" keygen --show "$tmp/passwd" >"$tmp/bad.out" 2>"$tmp/bad.err"; rc=$?
[ $rc -ne 0 ] && grep -q "$tmp/passwd.*not a certificate" "$tmp/bad.err" && [ ! -s "$tmp/bad.out" ]
ok $? "--show of another file says it is not a certificate, and prints nothing (exit $rc)"
"$chorus" keygen --help | grep -q -- "--show FILE"; ok $? "keygen --help says what it does"
done_testing
