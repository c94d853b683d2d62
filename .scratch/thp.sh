#!/usr/bin/env bash
rounds=${1:-3}
one() { npm run --silent bench -- --no-ceiling --duration 8 --warmup 2 --quiet-wait 5 --attempts 1 --associations 1000000 --scenario lookup1000,lookup100 2>&1 |
      awk -F'|' -v r=$1 -v s=$2 '/^\| [a-z]/ && !/^\| scenario/ { gsub(/ /, "", $2); gsub(/ /, "", $8); gsub(/ /, "", $20); gsub(/ /, "", $21); print r, s, $2, $8, $20, $0 }'; }
for r in $(seq 1 $rounds); do
  one $r plain
  GLIBC_TUNABLES=glibc.malloc.hugetlb=1 one $r thp
done
