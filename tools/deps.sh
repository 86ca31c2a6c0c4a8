#!/bin/sh
# Install whichever of the given Debian packages are missing. Nothing is
# installed (and sudo is never asked for) when all of them are present.
set -eu
missing=""
for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "deps: missing packages:$missing; run as root or install sudo" >&2
    exit 1
fi
# Another install may hold the package locks (unattended-upgrades, a second
# terminal): wait for it rather than fail. apt-get waits for the dpkg lock
# itself with DPkg::Lock::Timeout; the package lists' lock (apt-get update)
# it does not, so that is retried while apt says it could not get a lock.
WAIT=${DEPS_LOCK_WAIT:-900}
apt() {
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$WAIT" "$@"
}
start=$(date +%s)
until apt update -qq 2>/tmp/bulkhead-deps.$$; do
    if ! grep -q "Could not get lock\|Unable to lock" /tmp/bulkhead-deps.$$ ||
        [ $(($(date +%s) - start)) -ge "$WAIT" ]; then
        cat /tmp/bulkhead-deps.$$ >&2
        rm -f /tmp/bulkhead-deps.$$
        exit 1
    fi
    echo "deps: another package install holds the lock; waiting" >&2
    sleep 5
done
rm -f /tmp/bulkhead-deps.$$
# Debian's postgresql makes a cluster "main" on this machine and starts it.
# The tests make their own, inside a lab host, and stop it: ask for none,
# with a drop-in of postgresql-common's, for this install only (removed
# afterwards: clusters made later on this machine are made as usual).
dropin=/etc/postgresql-common/createcluster.d/bulkhead-install.conf
case " $missing " in *" postgresql "*)
    trap '$SUDO rm -f "$dropin"' EXIT
    $SUDO mkdir -p "${dropin%/*}" &&
        echo "create_main_cluster = false # while bulkhead's make deps installs postgresql" |
        $SUDO tee "$dropin" >/dev/null ;;
esac
# shellcheck disable=SC2086
apt install -y -qq --no-install-recommends $missing
