#!/bin/sh
# Install the Debian packages needed to build mod_websession and run every test,
# then the npm packages of package-lock.json (playwright-core, for the browser
# tests; StrykerJS, for make mutate-js; typescript, for make types) into
# node_modules/ with `npm ci`.
#
# Idempotent and fast: asks dpkg first and only runs apt-get (update + install)
# when something is missing. Safe without a tty (CI): never prompts.
# Exits non-zero with a clear message when something is missing and we are
# not root, or when apt-get fails.
set -eu

PACKAGES="
build-essential
apache2
apache2-dev
libapr1-dev
libaprutil1-dev
libapache2-mod-perl2
libwww-perl
libprotocol-websocket-perl
libio-socket-ssl-perl
libssl-dev
iproute2
python3
python3-websockets
clang
libclang-rt-14-dev
llvm
valgrind
openssl
curl
procps
psmisc
perl
websocketd
nodejs
node-ws
chromium
haproxy
nginx
dpkg-dev
debhelper
lintian
git
"

missing=""
for p in $PACKAGES; do
    # "install ok installed" is the only status that means usable.
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in
        "install ok installed") ;;
        *) missing="$missing $p" ;;
    esac
done

# npm packages (package.json, package-lock.json at the top of the
# repository): `npm ci` when node_modules/ is missing or older than the lock
# file. No browser is downloaded: the tests drive Debian's /usr/bin/chromium.
npm_deps() {
    top=$(cd "$(dirname "$0")/.." && pwd)
    [ -f "$top/package-lock.json" ] || return 0
    if [ -d "$top/node_modules" ] && [ ! "$top/package-lock.json" -nt "$top/node_modules" ]; then
        echo "install-deps: node_modules up to date"
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "install-deps: WARNING: no npm (it comes with the machine's nodejs);" \
             "without node_modules/ the browser tests (t/60_browser.t) skip" >&2
        return 0
    fi
    echo "install-deps: npm ci (package-lock.json)"
    (cd "$top" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund) </dev/null
    touch "$top/node_modules"
}

if [ -z "$missing" ]; then
    echo "install-deps: all $(echo $PACKAGES | wc -w) packages present"
    npm_deps
    exit 0
fi

echo "install-deps: missing:$missing"

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: ERROR: not root; install these packages first, e.g.:" >&2
    echo "  sudo apt-get install -y --no-install-recommends$missing" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS="-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"

echo "install-deps: apt-get update"
apt-get update -q </dev/null
echo "install-deps: apt-get install$missing"
# haproxy and nginx are for t/70 only: the tests start their own, so the
# packages' services are not started (a policy-rc.d of our own while
# installing, unless the machine has one).
policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy=1
fi
# shellcheck disable=SC2086
apt-get install $APT_OPTS $missing </dev/null || { [ -z "$policy" ] || rm -f /usr/sbin/policy-rc.d; exit 1; }
[ -z "$policy" ] || rm -f /usr/sbin/policy-rc.d

# Verify, so a silently skipped package fails here and not in a test.
still=""
for p in $missing; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || still="$still $p"
done
if [ -n "$still" ]; then
    echo "install-deps: ERROR: still missing after apt-get:$still" >&2
    exit 1
fi
echo "install-deps: installed:$missing"
npm_deps
