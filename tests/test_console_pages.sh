#!/bin/sh
#   The console's pages in Debian's chromium (tests/web/console.test.mjs,
#   under node --test, with playwright-core pinned by tests/web's
#   package-lock.json and installed by npm ci into the build directory).
#   Skipped, saying why, only when chromium or node is missing or chromium
#   cannot start.
web="$top_builddir/tests/web"
if [ ! -x /usr/bin/chromium ]; then
    echo "1..0 # SKIP chromium is not installed (Debian package chromium)"; exit 0
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "1..0 # SKIP node and npm are not installed (Debian packages nodejs, npm)"; exit 0
fi
mkdir -p "$web"
#   npm ci again only when the lock changed (scripts/check runs it first)
if ! cmp -s "$srcdir/tests/web/package-lock.json" "$web/package-lock.json" \
    || [ ! -d "$web/node_modules/playwright-core" ]; then
    cp "$srcdir/tests/web/package.json" "$srcdir/tests/web/package-lock.json" "$web/"
    if ! (cd "$web" && npm ci --no-audit --no-fund >npm.log 2>&1); then
        echo "not ok 1 - npm ci in $web"; sed 's/^/# /' "$web/npm.log"; echo "1..1"; exit 1
    fi
fi
CHORUS_WEB_DIR="$web" exec node --test --test-reporter=tap "$srcdir/tests/web/console.test.mjs"
