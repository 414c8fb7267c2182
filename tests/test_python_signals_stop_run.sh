#!/bin/sh
#   Ctrl-C and SIGTERM stop a Python service's node.run() cleanly, its
#   store closed (bindings/python/tests).
. "$srcdir/tests/tap.sh"
set -- test_signals_stop_run.py
. "$srcdir/tests/pytest.sh"
