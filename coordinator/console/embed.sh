#!/bin/sh
#   embed.sh OUT FILE... — writes the C file OUT holding each FILE (the
#   console's pages) as a table of chorus_console_asset_t (see
#   chorus_console_private.h), served at /BASENAME. Only POSIX sh and od.
set -e
out=$1; shift
tmp="$out.tmp"
{
    echo "/*  Made by coordinator/console/embed.sh from coordinator/console/: do not edit */"
    echo '#include "chorus_console_private.h"'
    n=0
    for file in "$@"; do
        echo "static const unsigned char s_asset_$n [] = {"
        od -An -v -tx1 "$file" | sed 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g'
        echo "0};"
        n=$((n + 1))
    done
    echo "const chorus_console_asset_t chorus_console_assets [] = {"
    n=0
    for file in "$@"; do
        name=$(basename "$file")
        case "$name" in
            *.html) type="text/html; charset=utf-8" ;;
            *.js) type="text/javascript; charset=utf-8" ;;
            *.css) type="text/css; charset=utf-8" ;;
            *.svg) type="image/svg+xml" ;;
            *) type="application/octet-stream" ;;
        esac
        echo "    {\"/$name\", \"$type\", s_asset_$n, sizeof (s_asset_$n) - 1},"
        n=$((n + 1))
    done
    echo "    {0, 0, 0, 0}};"
} >"$tmp"
mv "$tmp" "$out"
