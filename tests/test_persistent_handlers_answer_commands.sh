#!/bin/sh
#   `chorus serve --persistent` keeps --workers long-lived handlers that
#   take one request line at a time and answer each with one line: they
#   answer `chorus send`, run at the same time, and whatever a handler does
#   wrong (dies mid-request, writes a line that is not a reply, a line
#   nobody asked for, a line longer than any reply) costs that request a
#   clear error at most, never the service: the handler is replaced and the
#   command answered when tried again.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

start_hub

#   The handler, in plain sh: what it does depends on the command. It
#   finds the test's directory in $T, from chorus serve's environment.
T=$tmp
export T
cat > "$tmp/handler.sh" <<'EOF'
#!/bin/sh
echo "$$" >> "$T/started"
#   str NAME: a string member of the request line
str () { printf '%s\n' "$line" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
while IFS= read -r line; do
    id=$(str id)
    case $(str command) in
    echo)
        payload=$(printf '%s\n' "$line" | sed -n 's/.*"payload":\(.*\)}$/\1/p')
        echo "{\"id\": \"$id\", \"payload\": {\"pid\": $$, \"echo\": $payload}}" ;;
    meet)
        #   Answers once 4 handlers hold a meet request at the same time
        echo "$$" >> "$T/met"
        tries=0
        while [ "$(wc -l < "$T/met")" -lt 4 ] && [ $tries -lt 400 ]; do
            sleep 0.05; tries=$((tries + 1))
        done
        echo "{\"id\": \"$id\", \"payload\": {\"pid\": $$, \"met\": $(wc -l < "$T/met")}}" ;;
    hang)
        #   The first try waits for ever (until killed); the next answers
        if [ ! -f "$T/hung" ]; then
            echo "$$" > "$T/hung.tmp"; mv "$T/hung.tmp" "$T/hung"
            read never < "$T/never"
        fi
        echo "{\"id\": \"$id\", \"payload\": {\"recovered\": true}}" ;;
    quit) exit 3 ;;
    garbage) echo "this is not JSON" ;;
    noid) echo '{"payload": 1}' ;;
    both) echo "{\"id\": \"$id\", \"payload\": 1, \"error\": {\"code\": \"x\"}}" ;;
    decline)
        echo "{\"id\": \"$id\", \"error\": {\"code\": \"card-declined\", \"message\": \"no funds\", \"retryable\": false}}" ;;
    busy) echo "{\"id\": \"$id\", \"error\": {\"code\": \"busy\", \"message\": \"try later\"}}" ;;
    stray)
        #   A line for a request it does not have, then its answer, then
        #   another line nobody asked for
        echo '{"id": "nobody-asked", "payload": 0}'
        echo "{\"id\": \"$id\", \"payload\": \"strayed\"}"
        echo '{"id": "nobody-asked-either", "payload": 0}' ;;
    flood)
        head -c 9000000 /dev/zero | tr '\0' x; echo ;;
    esac
done
EOF
chmod +x "$tmp/handler.sh"
mkfifo "$tmp/never"

"$chorus" serve tools --store "$tmp/tools" --workers 4 --persistent "exec $tmp/handler.sh" \
    --handle echo --handle meet --handle hang --handle quit --handle garbage --handle noid \
    --handle both --handle decline --handle busy --handle stray --handle flood \
    2>"$tmp/serve.err" &
serve_pid=$!
pids="$pids $serve_pid"
await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q '^tools '"
ok $? "the service has joined"
await 100 has_lines "$tmp/started" 4
ok $? "4 long-lived handlers started: $(tr '\n' ' ' < "$tmp/started")"

#   --- answers ------------------------------------------------------------
out=$("$chorus" send tools echo '{"amount": 42}' --timeout 20)
ok $? "chorus send gets a reply from a --persistent handler"
echo "$out" | grep -q '"echo": *{"amount": *42}'; ok $? "the handler's payload: $out"
first_pid=$(echo "$out" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
grep -qx "$first_pid" "$tmp/started"; ok $? "answered by one of the started handlers ($first_pid)"

#   4 requests that each wait for the other 3: answered only if 4 handlers
#   hold one each at the same time
senders=""
for i in 1 2 3 4; do
    "$chorus" send tools meet --timeout 30 >"$tmp/meet-$i" 2>&1 &
    senders="$senders $!"
done
failed=0
for pid in $senders; do wait "$pid" || failed=$((failed + 1)); done
[ $failed -eq 0 ]; ok $? "4 requests that wait for each other are all answered ($failed failed)"
n=$(cat "$tmp"/meet-* | grep -c '"met": *4')
[ "$n" -eq 4 ]; ok $? "each saw all 4 at once ($n)"
n=$(cat "$tmp"/meet-* | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | sort -u | wc -l)
[ "$n" -eq 4 ]; ok $? "in 4 different handlers ($n)"
[ "$(lines "$tmp/started")" -eq 4 ]; ok $? "and no handler more than --workers was started"

#   --- a handler killed mid-request ---------------------------------------
"$chorus" send tools hang --idempotency hang-1 --timeout 20 >"$tmp/hang.out" 2>"$tmp/hang.err" &
sender=$!
await 200 test -f "$tmp/hung"
ok $? "a handler holds a request"
victim=$(cat "$tmp/hung")
kill -9 "$victim"
wait "$sender"; rc=$?
[ $rc -eq 1 ]; ok $? "the request killed with its handler gets an error reply: exit $rc"
grep -q "handler-died: the --persistent handler (pid $victim) was killed by signal 9" \
    "$tmp/hang.err" && grep -q "(retryable)" "$tmp/hang.err"
ok $? "handler-died, naming its pid and the signal, retryable: $(cat "$tmp/hang.err")"
grep -q "the --persistent handler (pid $victim) was killed by signal 9 before it answered; another starts in 100 ms" \
    "$tmp/serve.err"
ok $? "the service warns, naming the pid and how it ended"
await 100 has_lines "$tmp/started" 5
ok $? "another handler takes its place: $(tail -1 "$tmp/started")"
out=$("$chorus" send tools hang --idempotency hang-1 --timeout 20)
ok $? "the same command tried again is answered: $out"
echo "$out" | grep -q '"recovered": *true'; ok $? "by a handler that did it"
kill -0 "$serve_pid"; ok $? "chorus serve runs on"

out=$("$chorus" send tools quit --timeout 20 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "handler-died: .* exited with status 3 before it answered"
ok $? "a handler that exits mid-request: the same error, with its status: $out"
await 100 has_lines "$tmp/started" 6
ok $? "and it is replaced too"

#   --- lines that are not replies -----------------------------------------
check_bad () {    # check_bad COMMAND WHAT-THE-ERROR-SAYS
    out=$("$chorus" send tools "$1" --timeout 20 2>&1); rc=$?
    [ $rc -eq 1 ] && echo "$out" | grep -q "bad-output: .*$2" && echo "$out" | grep -q "(permanent)"
    ok $? "$1: a permanent bad-output error saying why: $out"
}
check_bad garbage "not a reply: not JSON"
grep -q "answered garbage .* with a line that is not a reply, not JSON.*: this is not JSON" \
    "$tmp/serve.err"
ok $? "and a warning quoting the line: $(grep garbage "$tmp/serve.err")"
check_bad noid 'no "id" string'
check_bad both 'both "payload" and "error"'
[ "$(lines "$tmp/started")" -eq 6 ]; ok $? "a handler that answers badly goes on serving"

out=$("$chorus" send tools decline --timeout 20 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "card-declined: no funds (permanent)"
ok $? "an error reply, permanent as the handler says: $out"
out=$("$chorus" send tools busy --timeout 20 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "busy: try later (retryable)"
ok $? "retryable when it does not say: $out"

#   --- lines nobody asked for ----------------------------------------------
out=$("$chorus" send tools stray --timeout 20)
[ "$out" = '"strayed"' ]; ok $? "the answer among lines nobody asked for: $out"
await 100 grep -q "nobody-asked-either" "$tmp/serve.err"
ok $? "those lines are dropped with a warning"
grep -q "answered a request it does not have (id 'nobody-asked')" "$tmp/serve.err"
ok $? "naming the id: $(grep "nobody-asked'" "$tmp/serve.err")"
out=$("$chorus" send tools echo '"after"' --timeout 20)
echo "$out" | grep -q '"echo": *"after"'; ok $? "and the next request gets its own answer: $out"

#   --- a line longer than any reply ----------------------------------------
check_bad flood "longer than any reply"
grep -q "wrote a line longer than any reply (8 MiB); killed" "$tmp/serve.err"
ok $? "the handler is killed, with a warning"
await 100 has_lines "$tmp/started" 7
ok $? "and replaced"
out=$("$chorus" send tools echo '1' --timeout 20)
ok $? "the service answers on: $out"

#   --- stopping ----------------------------------------------------------
kill "$serve_pid"; wait "$serve_pid"; rc=$?
[ $rc -eq 0 ]; ok $? "SIGTERM stops chorus serve with exit 0"
alive=0
for pid in $(cat "$tmp/started"); do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
[ $alive -eq 0 ]; ok $? "and its handlers end with it ($alive left)"

#   --- usage --------------------------------------------------------------
err=$("$chorus" serve x --persistent cat --handle 'a=true' 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "with --persistent, --handle names a command only"
ok $? "--handle with a shell command under --persistent is refused: $err"
err=$("$chorus" serve x --handle a 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "has no SHELL-COMMAND"
ok $? "--handle without one and without --persistent is refused: $err"
err=$("$chorus" serve x --persistent '' --handle a 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "needs a SHELL-COMMAND"; ok $? "an empty --persistent: $err"
"$chorus" serve --help | grep -q '"id": COMMAND-ID, "command": NAME'
ok $? "chorus serve --help gives the request line"
done_testing
