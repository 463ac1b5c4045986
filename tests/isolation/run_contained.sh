#!/usr/bin/env bash
# Run anything that executes a sandbox inside containment (see tests/isolation/README):
#   * a fresh pid namespace (unshare --pid --fork --mount-proc): an escaped kill(-1)
#     can only reach processes of this test run, never other sessions on the machine;
#   * pids + memory (+ cpu, unlimited, for nesting) cgroups: a fork or memory bomb that
#     escapes the sandbox's own limits is capped at PIDS_MAX / MEM_LIMIT for the whole run.
# Cgroups are created *below* the caller's own cgroup in each hierarchy so the limits of
# whatever started us stay in force; they are removed (depth first) on exit.
#
# Usage: tests/isolation/run_contained.sh [pytest args...]      (default: tests/isolation)
#        RUN_CMD="python script.py" tests/isolation/run_contained.sh   (run a command instead)
set -u
cd "$(dirname "$0")/../.."
PY=${PYTHON:-$PWD/.venv/bin/python}
NAME=actorium-isotest-$$
PIDS_MAX=${PIDS_MAX:-2000}
MEM_LIMIT=${MEM_LIMIT:-4G}

if [ "$(id -u)" != 0 ] || [ -n "${ACTORIUM_ISOTEST_USERNS:-}" ]; then
    echo "run_contained.sh: not root; running with pid namespace only (unshare --user)" >&2
    case " $* " in *" tests/"*) ;; *) set -- tests/isolation "$@" ;; esac
    export ACTORIUM_ISOTEST_BOOT_SECRET="boot-secret-$$-$RANDOM" OPENBLAS_NUM_THREADS=1
    exec unshare --user --map-root-user --pid --fork --mount-proc \
        "$PY" -m pytest "$@"
fi

cg_dir() {  # cg_dir CONTROLLER -> directory for our cgroup in that hierarchy
    local rel
    rel=$(awk -F: -v c="$1" '{n=split($2,a,","); for(i=1;i<=n;i++) if(a[i]==c) print $3}' /proc/self/cgroup)
    rel=${rel%/}
    echo "/sys/fs/cgroup/$1$rel/$NAME"
}

CGS=()
for c in pids memory cpu; do
    d=$(cg_dir $c)
    if mkdir -p "$d" 2>/dev/null; then CGS+=("$d"); else
        echo "run_contained.sh: cannot create $d" >&2; exit 2; fi
done
echo "$PIDS_MAX" > "$(cg_dir pids)/pids.max"
echo "$MEM_LIMIT" > "$(cg_dir memory)/memory.limit_in_bytes"

cleanup() {
    local d p tries
    for d in "${CGS[@]}"; do
        for tries in 1 2 3 4 5 6 7 8 9 10; do
            # kill anything still in the tree (only our own test run can be in it)
            find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r p; do
                kill -9 "$p" 2>/dev/null; done
            find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
            [ -d "$d" ] || break
            sleep 0.2
        done
        [ -d "$d" ] && echo "run_contained.sh: WARNING could not remove $d" >&2
    done
}
trap cleanup EXIT INT TERM

JOIN=""
for d in "${CGS[@]}"; do JOIN="$JOIN echo \$\$ > $d/cgroup.procs;"; done
if [ -n "${RUN_CMD:-}" ]; then
    INNER="exec unshare --pid --fork --mount-proc $RUN_CMD"
else
    INNER='exec unshare --pid --fork --mount-proc "$0" -m pytest "$@"'
    case " $* " in *" tests/"*) ;; *) set -- tests/isolation "$@" ;; esac
fi
ACTORIUM_ISOTEST_BOOT_SECRET="boot-secret-$$-$RANDOM" OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
    sh -c "$JOIN $INNER" "$PY" "$@"
rc=$?
exit $rc
