"""A tiny TAP producer for test scripts run by automake's tap-driver.

Plain TAP on stdout; ``done_testing()`` exits nonzero when a test failed or
the plan was not met, so the script also works without the driver.
"""

import sys

_state = {'planned': None, 'run': 0, 'failed': 0}


def _emit(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def plan(count):
    """Announce how many tests will run (optional: done_testing prints the plan otherwise)."""
    _state['planned'] = count
    _emit('1..%d' % count)


def diag(message):
    """A comment line, shown by the driver but never parsed as a result."""
    for line in str(message).splitlines() or ['']:
        _emit('# ' + line)


def ok(condition, name=''):
    """One test: passes when ``condition`` is true. Returns the condition as a bool."""
    _state['run'] += 1
    passed = bool(condition)
    if not passed:
        _state['failed'] += 1
    name = name.replace('#', '\\#')
    _emit('%s %d%s' % ('ok' if passed else 'not ok', _state['run'], ' - ' + name if name else ''))
    return passed


def is_(got, expected, name=''):
    """One test: passes when ``got == expected``; shows both when it fails."""
    passed = ok(got == expected, name)
    if not passed:
        diag('     got: %r' % (got,))
        diag('expected: %r' % (expected,))
    return passed


def skip(name, reason=''):
    """One test reported as skipped (counts as passed)."""
    _state['run'] += 1
    _emit('ok %d - %s # SKIP %s' % (_state['run'], name.replace('#', '\\#'), reason))


def bail_out(reason):
    """Stop the whole run at once."""
    _emit('Bail out! %s' % reason)
    sys.exit(255)


def done_testing():
    """Print the plan if none was given, then exit: 0 if all passed, 1 otherwise."""
    if _state['planned'] is None:
        _emit('1..%d' % _state['run'])
    elif _state['planned'] != _state['run']:
        diag('planned %d tests but ran %d' % (_state['planned'], _state['run']))
        _state['failed'] += 1
    sys.exit(1 if _state['failed'] else 0)
