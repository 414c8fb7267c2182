#!/bin/sh
#   A Python group member gets `chorus publish` events exactly once across
#   a kill -9 and a restart on its store (bindings/python/tests).
. "$srcdir/tests/tap.sh"
set -- test_group_takes_events_once.py
. "$srcdir/tests/pytest.sh"
