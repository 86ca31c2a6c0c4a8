#!/bin/sh
# The engine's layering rule (docs/design.md), checked: `make lint` runs it.
#
# engine/ holds one folder per layer, lowest first in LAYERS. A file may
# include headers of its own layer and of the layers below it, always named
# with their folder ("base/util.h"); an include that goes up, or names no
# folder, fails. Within a layer the modules (a .c and its .h) must not form
# a cycle, nor may they across layers (which the order already rules out).
# A run is opaque (run/handle.h) to all but the modules that carry it out:
# only those in RUN_INSIDE may include run/run.h, where its struct is.
# Prints each problem with file:line and exits 1 if there is any.
set -u
RUN_INSIDE="attempt ctx gate replay request resume rollback run sched undo"
LAYERS="base effects journal lua load report run cli"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT/engine" || exit 2

opaque=0
for f in */*.c */*.h; do
    grep -qE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"run/run\.h"' "$f" || continue
    m=${f#*/}; m=${m%.*}
    case "${f%%/*}:$RUN_INSIDE " in
        run:*" $m "* | run:"$m "*) ;;
        *) echo "engine/$f: includes run/run.h: a run is opaque outside the modules that carry it out ($RUN_INSIDE); use run/handle.h and its events"; opaque=1 ;;
    esac
done

for f in */*.c */*.h; do
    grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | sed "s|^|$f:|"
done | awk -v layers="$LAYERS" '
BEGIN {
    n = split(layers, L, " ")
    for (i = 1; i <= n; i++) rank[L[i]] = i
    bad = 0
}
{
    # engine-relative "file:line:#include "dir/name.h""
    split($0, p, ":")
    file = p[1]; line = p[2]
    inc = $0; sub(/^[^"]*"/, "", inc); sub(/".*$/, "", inc)
    fdir = file; sub(/\/.*/, "", fdir)
    mod = file; sub(/\.[ch]$/, "", mod)
    if (!(fdir in rank)) {
        printf "engine/%s: folder %s is not a layer (%s)\n", file, fdir, layers; bad = 1; next
    }
    if (inc !~ /\//) {
        printf "engine/%s:%s: include \"%s\" names no layer: write it as \"LAYER/%s\"\n", file, line, inc, inc
        bad = 1; next
    }
    idir = inc; sub(/\/.*/, "", idir)
    if (!(idir in rank)) {
        printf "engine/%s:%s: include \"%s\": %s is not a layer\n", file, line, inc, idir; bad = 1; next
    }
    if (rank[idir] > rank[fdir]) {
        printf "engine/%s:%s: include \"%s\" goes up: layer %s may use only %s and below\n", file, line, inc, fdir, fdir
        bad = 1
    }
    dep = inc; sub(/\.h$/, "", dep)
    if (dep != mod && !((mod, dep) in edge)) {
        edge[mod, dep] = 1
        out[mod] = out[mod] " " dep
    }
    nodes[mod] = 1; nodes[dep] = 1
}
# depth-first search; colour 1: on the path, 2: done
function visit(v,    k, m, ws, w) {
    colour[v] = 1; path[++depth] = v
    m = split(out[v], ws, " ")
    for (k = 1; k <= m; k++) {
        w = ws[k]
        if (colour[w] == 1) { cycle(w); continue }
        if (colour[w] == 0) visit(w)
    }
    colour[v] = 2; depth--
}
function cycle(w,    k, s, start) {
    for (k = depth; k >= 1; k--) if (path[k] == w) { start = k; break }
    bad = 1
    if (++cycles > 5) return # the first few say enough
    s = ""
    for (k = start; k <= depth; k++) s = s path[k] " -> "
    printf "include cycle: %s%s\n", s, w
}
END {
    depth = 0
    for (v in nodes) if (colour[v] == 0) visit(v)
    exit bad
}' || exit 1
exit $opaque
