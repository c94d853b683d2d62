#!/usr/bin/env bash
# Interleaved: lookup1000/lookup100 at 10k then 1M, ROUNDS times.
rounds=${1:-3}; shift
for r in $(seq 1 $rounds); do
  for n in 10000 1000000; do
    npm run --silent bench -- --no-ceiling --duration 8 --warmup 2 --quiet-wait 5 --attempts 1 --associations $n --scenario lookup1000,lookup100 "$@" 2>&1 |
      awk -F'|' -v r=$r -v n=$n '/^\| [a-z]/ && !/^\| scenario/ { gsub(/ /, "", $2); gsub(/ /, "", $8); gsub(/ /, "", $20); print r, n, $2, $8, $20 }'
  done
done
