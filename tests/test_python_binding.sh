#!/bin/sh
#   The Python binding (bindings/python) keeps the library's promises:
#   payloads are Python values and bad ones are refused saying why; a Python
#   service answers `chorus send` with replies and error replies; Python
#   calls C services and publishes to a C group, and its failures raise the
#   exception of their CHORUS_E* code; an event handler that raises
#   rejects or acknowledges the event as documented; nodes run inline
#   serve, call and publish. One TAP line per pytest test.
. "$srcdir/tests/tap.sh"
set -- test_payloads.py test_service_serves_cli.py test_python_talks_to_c.py \
    test_event_handlers_fail.py test_inline_nodes.py
. "$srcdir/tests/pytest.sh"
