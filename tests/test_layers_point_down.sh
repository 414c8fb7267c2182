#!/bin/sh
#   Layers point down only: protocol/ and node/ include nothing of the
#   layers above them, and the coordinator and the tools take from node/
#   only its public header, chorus.h. The build's include paths refuse most
#   of this already; this also catches node/'s private headers, which sit
#   in the folder that gives chorus.h.
. "$srcdir/tests/tap.sh"
#   The quoted includes of the files of folder $1 that name a file of one
#   of the folders after it, as "file: header" lines
s_reaching () {
    from=$1; shift
    for file in "$srcdir/$from"/*.c "$srcdir/$from"/*.h; do
        sed -n 's/^#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file" |
        while read -r header; do
            for to in "$@"; do
                [ -f "$srcdir/$to/$header" ] && [ ! -f "$srcdir/$from/$header" ] &&
                    echo "$from/$(basename "$file"): $to/$header"
            done
        done
    done
}
s_check () {
    found=$(s_reaching "$@" | grep -v ': node/chorus\.h$')
    [ -z "$found" ]; ok $? "$1/ uses no header of $(echo "$@" | cut -d' ' -f2- | sed 's|\([a-z]*\)|\1/|g'), chorus.h aside" ||
        diag "$found"
}
s_check protocol node coordinator tools
s_check node coordinator tools
s_check coordinator protocol node tools
s_check tools protocol node
done_testing
