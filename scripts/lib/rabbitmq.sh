#   rabbitmq.sh — a RabbitMQ broker of scripts/bench's own: loopback only,
#   free ports, its own epmd, node name, data, logs and cookie in one
#   directory, no plugins; stopped by process id (sourced by scripts/bench).
# shellcheck shell=bash

CHORUS_RABBIT_SERVER=${CHORUS_RABBIT_SERVER:-/usr/lib/rabbitmq/bin/rabbitmq-server}
CHORUS_RABBIT_PORT=""           #  the AMQP port, once started
CHORUS_RABBIT_PROBLEM=""        #  why it did not start
s_rabbit_dir=""
s_rabbit_pid=""                 #  the rabbitmq-server script, parent of the VM
s_epmd_pid=""

#   s_free_ports N — N distinct free loopback TCP ports, on one line
s_free_ports () {
    python3 -c '
import socket, sys
held = [socket.socket () for _ in range (int (sys.argv [1]))]
for s in held:
    s.bind (("127.0.0.1", 0))
print (" ".join (str (s.getsockname () [1]) for s in held))' "$1"
}

#   s_port_open PORT — something accepts connections on 127.0.0.1:PORT
s_port_open () {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

#   chorus_rabbit_start DIR — start a broker keeping everything in DIR and
#   wait until it accepts connections. Returns 0 with CHORUS_RABBIT_PORT
#   set, or 1 with the reason in CHORUS_RABBIT_PROBLEM.
chorus_rabbit_start () {
    s_rabbit_dir=$1
    if [ ! -x "$CHORUS_RABBIT_SERVER" ] || ! command -v epmd >/dev/null; then
        CHORUS_RABBIT_PROBLEM="rabbitmq-server is not installed (Debian package rabbitmq-server)"
        return 1
    fi
    local ports amqp dist epmd_port i said
    ports=$(s_free_ports 3) || { CHORUS_RABBIT_PROBLEM="no free ports"; return 1; }
    read -r amqp dist epmd_port <<<"$ports"
    mkdir -p "$s_rabbit_dir/log" "$s_rabbit_dir/mnesia"
    echo "[]." >"$s_rabbit_dir/enabled_plugins"
    : >"$s_rabbit_dir/rabbitmq.conf"
    : >"$s_rabbit_dir/rabbitmq-env.conf"
    #  An epmd of our own on a port of our own, so that a system one (and
    #  its nodes) is neither used nor disturbed, and ours can be stopped
    epmd -port "$epmd_port" -address 127.0.0.1 >"$s_rabbit_dir/epmd.out" 2>&1 &
    s_epmd_pid=$!
    for i in $(seq 50); do
        s_port_open "$epmd_port" && break
        sleep 0.1
    done
    (cd "$s_rabbit_dir" && exec env HOME="$s_rabbit_dir" \
        ERL_EPMD_PORT="$epmd_port" ERL_CRASH_DUMP="$s_rabbit_dir/erl_crash.dump" \
        RABBITMQ_NODENAME="chorus-bench-$$@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$amqp" RABBITMQ_DIST_PORT="$dist" \
        RABBITMQ_MNESIA_BASE="$s_rabbit_dir/mnesia" RABBITMQ_LOG_BASE="$s_rabbit_dir/log" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$s_rabbit_dir/enabled_plugins" \
        RABBITMQ_CONFIG_FILE="$s_rabbit_dir/rabbitmq" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$s_rabbit_dir/advanced.config" \
        RABBITMQ_CONF_ENV_FILE="$s_rabbit_dir/rabbitmq-env.conf" \
        RABBITMQ_PID_FILE="$s_rabbit_dir/rabbit.pid" \
        "$CHORUS_RABBIT_SERVER" </dev/null >"$s_rabbit_dir/server.out" 2>&1) &
    s_rabbit_pid=$!
    for i in $(seq 600); do
        if s_port_open "$amqp"; then
            CHORUS_RABBIT_PORT=$amqp
            return 0
        fi
        if ! kill -0 "$s_rabbit_pid" 2>/dev/null; then
            said=$(tail -3 "$s_rabbit_dir/server.out" | tr -s '\n ' '  ')
            CHORUS_RABBIT_PROBLEM="rabbitmq-server exited while starting${said:+: $said}"
            chorus_rabbit_stop
            return 1
        fi
        sleep 0.1
    done
    CHORUS_RABBIT_PROBLEM="rabbitmq-server did not accept connections within 60 s"
    chorus_rabbit_stop
    return 1
}

#   s_stop_pid PID SECONDS — TERM, then KILL after SECONDS, and reap
s_stop_pid () {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq $(($2 * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

#   chorus_rabbit_stop — stop the broker and its epmd; safe to call twice
chorus_rabbit_stop () {
    local vm=""
    [ -n "$s_rabbit_dir" ] && [ -f "$s_rabbit_dir/rabbit.pid" ] && vm=$(cat "$s_rabbit_dir/rabbit.pid")
    #  The script stops the VM gracefully on TERM; the VM itself, if it
    #  outlived the script, is stopped by the id it wrote
    [ -n "$s_rabbit_pid" ] && s_stop_pid "$s_rabbit_pid" 20
    [ -n "$vm" ] && s_stop_pid "$vm" 5
    [ -n "$s_epmd_pid" ] && s_stop_pid "$s_epmd_pid" 2
    s_rabbit_pid=""
    s_epmd_pid=""
    CHORUS_RABBIT_PORT=""
}
