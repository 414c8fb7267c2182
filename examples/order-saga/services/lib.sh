#   lib.sh — what the order-saga services share, sourced by each: the line
#   protocol of `chorus serve --persistent` and `chorus on --persistent`
#   (one JSON request a line on stdin, one JSON reply a line on stdout),
#   and the effects file where every handler records what it did, once per
#   idempotency key (the file is the services' "database").
#   ORDER_SAGA_STATE names the directory that holds it; scripts/demo sets it.
#
#   A service is one long-lived awk process that starts nothing per
#   request, so a request costs microseconds, not a process or three. It
#   remembers the keys it has done (and loads them from the files when it
#   starts, so a handler that was restarted remembers them too); a service
#   runs one such process (chorus serve without --workers), so that no two
#   can both miss a key.

: "${ORDER_SAGA_STATE:?ORDER_SAGA_STATE must name the state directory of the demo}"

#   What every service's awk program starts with. For each request line it
#   sets id, command, key (the idempotency key; "none" without one), order
#   (the payload's order_id) and number (N of "o-N", 0 for any other id),
#   then calls the service's handle(). Our lines are flat but for the
#   payload, whose member names differ from the envelope's (id, command,
#   idempotency, topic, key, ...), so the first match of a name is the one.
s_library='
BEGIN {
    effects = state "/effects"; duplicates = state "/duplicates"
    tried_file = state "/tried"; log_file = state "/services.log"
    load(effects, done); load(tried_file, tried)
}
function load(file, set,    line) {
    while ((getline line < file) > 0) set[line] = 1
    close(file)
}
#   str(NAME), num(NAME): the first string or number member NAME of the line
function str(name) {
    if (!match($0, "\"" name "\":\"[^\"]*\"")) return ""
    return substr($0, RSTART + length(name) + 4, RLENGTH - length(name) - 5)
}
function num(name) {
    if (!match($0, "\"" name "\":-?[0-9.]+")) return 0
    return substr($0, RSTART + length(name) + 3, RLENGTH - length(name) - 3)
}
#   append(FILE, TEXT): one line, written at once
function append(file, text) { print text >> file; fflush(file) }
#   reply(JSON): answer the request with a payload
function reply(json) { printf "{\"id\":\"%s\",\"payload\":%s}\n", id, json }
#   fail(CODE, MESSAGE, PERMANENT): answer with an error, retryable unless
#   PERMANENT
function fail(code, message, permanent) {
    printf "{\"id\":\"%s\",\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"retryable\":%s}}\n",
           id, code, message, permanent? "false": "true"
}
#   The effect happens once per key: a command run again with the same key
#   (a retry whose first reply was lost) finds its key and does nothing twice
function record_effect() {
    if (key in done) append(duplicates, key " again")
    else { done[key] = 1; append(effects, key) }
}
#   first_try(): true the first time this key is seen (flaky dependencies
#   fail a first try to show the coordinator retrying)
function first_try() {
    if (key in tried) return 0
    tried[key] = 1; append(tried_file, key)
    return 1
}
#   note(TEXT): one line in the services log, shown by scripts/demo at the end
function note(text) { append(log_file, command " " key ": " text) }
{
    id = str("id"); command = str("command")
    key = str("idempotency"); if (key == "") key = "none"
    order = str("order_id"); number = order
    sub(/^o-/, "", number); if (number !~ /^[0-9]+$/) number = 0
    handle()
}
'

#   serve_lines PROGRAM: become the awk process that answers each request
#   line with PROGRAM, which defines handle(); -W interactive reads a line
#   as soon as it comes and writes each reply at once
serve_lines () {
    exec mawk -W interactive -v state="$ORDER_SAGA_STATE" "$s_library$1"
}
