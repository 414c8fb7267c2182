#   packages.sh — the Debian packages Chorus builds with, installed when
#   missing (sourced by scripts/check, scripts/demo, scripts/bench, scripts/fuzz,
#   scripts/pipeline-demo). The last line is what the document pipeline runs
#   (examples/document-pipeline, tested by scripts/check): OCR and page images;
#   chromium and nodejs run the web console's browser tests (tests/web); curl
#   reads /metrics (scripts/demo).

CHORUS_PACKAGES="build-essential autoconf automake libtool pkg-config
    libzmq3-dev libczmq-dev libmsgpack-dev libleveldb-dev libyaml-dev libjansson-dev zlib1g-dev libmicrohttpd-dev iproute2 curl
    python3 python3-zmq python3-msgpack python3-pytest faketime mawk prometheus chromium nodejs
    tesseract-ocr tesseract-ocr-eng python3-pil fonts-dejavu-core"
#   npm (the console's browser tests install playwright-core with it): Debian's
#   package, unless the nodejs installed brings its own, as NodeSource's does
command -v npm >/dev/null 2>&1 || CHORUS_PACKAGES="$CHORUS_PACKAGES npm"

#   What scripts/bench measures against: a RabbitMQ broker and its C client.
#   Only the bench installs them (chorus_install_packages $CHORUS_BENCH_PACKAGES);
#   the build and the tests never need them.
CHORUS_BENCH_PACKAGES="rabbitmq-server librabbitmq-dev"
#   What scripts/bench --peers measures against besides: a NATS server with
#   JetStream, and its C client
CHORUS_PEER_PACKAGES="nats-server libnats-dev"

#   chorus_install_packages [EXTRA...] — installs what is missing, quietly
chorus_install_packages () {
    local missing="" pkg
    for pkg in $CHORUS_PACKAGES "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing="$missing $pkg"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
        return 1
    fi
    echo "== installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq $missing >/dev/null \
        || { echo "apt-get install$missing failed" >&2; return 1; }
}
