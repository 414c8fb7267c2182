"""Python services the tests run as processes of their own.

    svc.py serve             service "pyserve": commands that answer, fail and misbehave
                             (run inline when $PYSERVE_INLINE is 1)
    svc.py group STORE LOG   service "pygroup": takes work.* events, logs each durably;
                             the first delivery of n == $HANG_AT waits for ever
    svc.py signals STORE     service "pysig": answers "ping" until a signal
    svc.py failing LOG       service "pyfail": takes fail.* events, and raises for some

Each prints "READY ENDPOINT" once started.
"""

import faulthandler
import os
import signal
import sys
import time

import chorus


def ready(node: chorus.Node) -> None:
    print("READY", node.endpoint, node.instance, flush=True)


def serve() -> None:
    #   PYSERVE_INLINE=1: its engine runs in this thread (Node(inline=True))
    with chorus.Node("pyserve", inline=os.environ.get("PYSERVE_INLINE") == "1") as node:
        @node.command("echo")
        def echo(payload, ctx):
            return {"got": payload, "idempotency": ctx.idempotency, "attempt": ctx.attempt,
                    "sender": ctx.sender, "correlation": ctx.correlation}

        @node.command("declined")
        def declined(payload, ctx):
            raise chorus.Permanent("card-declined", "the card expired")

        @node.command("busy")
        def busy(payload, ctx):
            raise chorus.Retryable("busy", "try again later")

        @node.command("crash")
        def crash(payload, ctx):
            return 1 / 0

        @node.command("unsendable")
        def unsendable(payload, ctx):
            return {"a set": {1, 2}}

        @node.command("reverse")
        def reverse(payload, ctx):
            return payload[::-1]

        ready(node)
        node.run()


def group(store: str, log: str) -> None:
    hang_at = int(os.environ.get("HANG_AT", "0"))
    with chorus.Node("pygroup", store=store) as node, open(log, "a") as out:
        @node.on("work.")
        def work(event):
            n = event.payload["n"]
            if n == hang_at and event.attempt == 1:
                print("HUNG", n, flush=True)
                while True:
                    time.sleep(1)
            out.write(f"{event.seq} {n} {event.attempt}\n")
            out.flush()
            os.fsync(out.fileno())

        ready(node)
        node.run()


def failing(log: str) -> None:
    """Event n == 2 raises Retryable at its first delivery, n == 3 a
    RuntimeError, n == 4 Permanent at every delivery; each run is logged
    ("n attempt outcome")."""
    with chorus.Node("pyfail") as node, open(log, "a") as out:
        @node.on("fail.")
        def fail(event):
            n = event.payload["n"]
            outcome = "handled"
            if n == 2 and event.attempt == 1:
                outcome = "retryable"
            elif n == 3 and event.attempt == 1:
                outcome = "exception"
            elif n == 4:
                outcome = "permanent"
            out.write(f"{n} {event.attempt} {outcome}\n")
            out.flush()
            if outcome == "retryable":
                raise chorus.Retryable("later", "not now")
            if outcome == "exception":
                raise RuntimeError("the disk is on fire")
            if outcome == "permanent":
                raise chorus.Permanent("poison", "cannot read it")

        ready(node)
        node.run()


def signals(store: str) -> None:
    #   SIGUSR1 prints where every thread is, for a test that waits in vain
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    #   Ctrl-C as in a terminal, even when started with SIGINT ignored (as
    #   a shell's background jobs are, and so this test under `make check`
    #   run in the background): Python then leaves it ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    node = chorus.Node("pysig", store=store)

    @node.command("ping")
    def ping(payload, ctx):
        return "pong"

    node.start()
    ready(node)
    try:
        node.run()
    except KeyboardInterrupt:
        print("INTERRUPTED closed" if node.closed else "INTERRUPTED open", flush=True)
        #   The store is free again: a second node opens it in this process
        with chorus.Node("pysig", store=store) as again:
            print("REOPENED", again.instance, flush=True)
        raise
    print("RETURNED", flush=True)
    node.close()


if __name__ == "__main__":
    role, args = sys.argv[1], sys.argv[2:]
    {"serve": serve, "group": group, "signals": signals, "failing": failing}[role](*args)
