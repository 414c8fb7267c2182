#   The Python binding: the package `chorus`, installed into Python's
#   site directory for this prefix (pkgpythondir is $(pythondir)/chorus)
pkgpython_PYTHON = %D%/chorus/__init__.py %D%/chorus/_lib.py %D%/chorus/errors.py \
    %D%/chorus/node.py %D%/chorus/payload.py
dist_pkgpython_DATA = %D%/chorus/py.typed
EXTRA_DIST += %D%/pyproject.toml %D%/README.md %D%/bench.py %D%/tests/conftest.py %D%/tests/svc.py \
    %D%/tests/test_payloads.py %D%/tests/test_service_serves_cli.py \
    %D%/tests/test_python_talks_to_c.py %D%/tests/test_group_takes_events_once.py \
    %D%/tests/test_signals_stop_run.py %D%/tests/test_event_handlers_fail.py \
    %D%/tests/test_inline_nodes.py
