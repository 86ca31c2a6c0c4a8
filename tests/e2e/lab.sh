# Sourced by the e2e tests that run on the lab (tests/lab/lab), after
# lib.sh: lab_up brings a lab up and makes sure it comes down, with every
# background process of the test (BG), also when a test fails.
LABCTL="$ROOT/tests/lab/lab"
LAB="$WORK/lab"
BG=()
_lab_cleanup() {
    local p
    for p in "${BG[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${BG[@]}"; do wait "$p" 2>/dev/null; done
    "$LABCTL" down "$LAB" >/dev/null 2>&1
    _t_finish
}
trap _lab_cleanup EXIT

# lab_up NAME NEEDS HOST=SERVICES...: the lab with those hosts, its
# addresses in the environment (lab.env); or, when it cannot run here
# (not root, or the command NEEDS missing: "-" for none), test NAME
# skipped with why and the file ends.
lab_up() {
    local name=$1 needs=$2 why=""
    shift 2
    if [ "$(id -u)" != 0 ]; then
        why="the lab needs root for network and mount namespaces (sudo make check runs it)"
    elif [ "$needs" != - ] && ! command -v "$needs" >/dev/null; then
        why="needs $needs (make check installs it)"
    elif ! "$LABCTL" up "$LAB" "$@" >"$WORK/lab.up" 2>&1; then
        why="the lab did not come up: $(tail -n 3 "$WORK/lab.up" | tr '\n' '|')"
    fi
    if [ -n "$why" ]; then
        t "$name"; skip "$why"
        exit 0
    fi
    . "$LAB/lab.env"
}

# lbh ARGS: bulkhead on the lab's engine side, with this test's state dir.
lbh() { "$LABCTL" run "$LAB" "$BULKHEAD" --state-dir "$STATE" "$@"; }
# on HOST CMD...: a command on a lab host, as root.
on() { local h=$1; shift; "$LABCTL" exec "$LAB" "$h" "$@"; }
# reach FROM HOST PORT: a TCP connection from host FROM to HOST:PORT opens (2 s).
reach() { on "$1" timeout 2 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null; }
# isolated HOST: the engine's nftables table is on HOST.
isolated() { on "$1" nft list tables 2>/dev/null | grep -q 'inet bulkhead_isolation'; }
