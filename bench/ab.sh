#!/usr/bin/env bash
# Interleaved A/B of `npm run bench`: the same bench, alternately on commit A (a temporary worktree) and on
# this working tree (B), ROUNDS times, so that both sides see the same swings of a shared or virtual
# machine. Prints one line per run: side, round, scenario, req/s, CPU µs/req.
#
#   bench/ab.sh <commit-A> [rounds] -- <npm run bench options>
#   bench/ab.sh HEAD~1 3 -- --backend sqlite --associations 100000 --scenario account,v1lookup
#
# A's worktree runs this tree's bench/ (so both sides measure the same way) and shares node_modules.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
a=${1:?usage: bench/ab.sh <commit-A> [rounds] -- <bench options>}
shift
rounds=3
if [[ ${1:-} != "--" && -n ${1:-} ]]; then rounds=$1; shift; fi
[[ ${1:-} == "--" ]] && shift

wt=$(mktemp -d "${TMPDIR:-/tmp}/seraph-ab-XXXXXX")
cleanup() { git -C "$here" worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"; }
trap cleanup EXIT
git -C "$here" worktree add --detach --force "$wt" "$a" >/dev/null 2>&1
ln -s "$here/node_modules" "$wt/node_modules"
rm -rf "$wt/bench" && cp -r "$here/bench" "$wt/bench"

run() { # side dir round
  (cd "$2" && npm run --silent bench -- --no-ceiling "${@:4}" 2>&1) |
    awk -F'|' -v s="$1" -v r="$3" '/^\| [a-z]/ && !/^\| scenario/ {
      gsub(/ /, "", $2); gsub(/ /, "", $8); gsub(/ /, "", $20); print s, r, $2, $8, $20 }'
}
echo "side round scenario req/s cpu_us_per_req   (A = $(git -C "$here" rev-parse --short "$a"), B = working tree)"
for r in $(seq 1 "$rounds"); do
  run A "$wt" "$r" "$@"
  run B "$here" "$r" "$@"
done
