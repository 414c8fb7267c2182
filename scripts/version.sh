#!/bin/sh
#   scripts/version.sh — prints the library version, MAJOR.MINOR.PATCH, as
#   node/chorus.h defines it. The header is the one place the version is
#   written; configure takes it from here.
cd "$(dirname "$0")/.." || exit 1
awk '/^#define CHORUS_VERSION_(MAJOR|MINOR|PATCH) / { v[$2] = $3 }
     END { printf "%s.%s.%s", v["CHORUS_VERSION_MAJOR"], v["CHORUS_VERSION_MINOR"],
                              v["CHORUS_VERSION_PATCH"] }' node/chorus.h
