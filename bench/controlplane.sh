#!/usr/bin/env bash
# bench/controlplane.sh — Portico's control plane vs nginx, in one run:
#   1. propagation: one route written → served by all 10 data planes (nginx: conf + SIGHUP),
#      at 1k and 10k routes; p50/p99/max against the goal p99 ≤ 100 ms
#   2. memory of the control plane and of one data plane at 10k and 100k routes (nginx: the
#      same routes as location blocks, master + worker)
#   3. the time of one POST /api/v1/apply of N routes, through SQLite and PostgreSQL.
# The work is done by bench/cpbench (Go); this script builds it and Portico and runs it.
# See bench/README.md for the method and how to read the output.
#
# Env (defaults in brackets):
#   SIZES          route counts for the propagation runs [1000,10000]
#   MEM_SIZES      route counts for the memory readings [10000,100000]
#   WRITES         measured Portico writes per size [100]
#   NGINX_WRITES   measured nginx writes per size [20]; 0 skips nginx's propagation runs
#   WARMUP         unmeasured writes before the measured ones [2]
#   DATAPLANES     data planes, on 127.0.1.1 … 127.0.1.N [10]
#   GAP_MS         pause between writes [100]
#   POLL_MS        pause between one proxy's polls [1]; the polls' CPU competes with what is measured
#   SETTLE         pause before each memory reading, seconds [5]
#   PG             PostgreSQL base URL, or "off" [postgres://postgres@127.0.0.1:5432 when it answers]
#   PG_DB          database created for the run and dropped after [bench_cp]
#   PG_WRITES      propagation writes through PostgreSQL at the largest size [20]
#   PROFILE=DIR    after the largest size: CPU profile of data plane 1 (pprof) and of the
#                  control plane (perf, if installed) during PROFILE_SECONDS [20] of writes;
#                  PROFILE=1 puts them in the temp dir, which is then kept
#   CP_LOG_LEVEL   control plane --log-level [debug]: it then logs each push (10 lines per write),
#                  from which the wall-clock breakdown is computed; info drops that table
#   PORTICO_BIN    the Portico binary to test [build ./cmd/portico into the temp dir]
#   BENCH_TIMEOUT  hard limit for the whole run, seconds [900]
#   BENCH_KEEP=1   keep the temp dir (data dirs, configs, logs); kept anyway on failure
#
# Quick run (about a minute): SIZES=1000 MEM_SIZES=1000 WRITES=20 NGINX_WRITES=5 PG=off bench/controlplane.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/portico-cpbench.XXXXXX")
chmod 755 "$TMP" # nginx workers run as nobody

log() { printf '%s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

cleanup() {
  local rc=$?
  # cpbench stops every process it started (by PID) before it exits; nothing to kill here.
  if [[ ${BENCH_KEEP:-0} == 1 || $rc != 0 ]]; then log "work dir kept: $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in nginx go; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y nginx-light)"
done

PG_URL=${PG:-}
if [[ -z $PG_URL ]]; then
  PG_URL=postgres://postgres@127.0.0.1:5432
  if ! command -v psql >/dev/null || ! psql "$PG_URL/postgres" -qtAc 'select 1' >/dev/null 2>&1; then
    log "WARNING: no PostgreSQL at $PG_URL (or no psql): the PostgreSQL apply is skipped (set PG=URL)"
    PG_URL=off
  fi
fi
[[ $PG_URL == off ]] && PG_URL=""

LABEL=""
if [[ -n ${PORTICO_BIN:-} ]]; then
  BIN=$PORTICO_BIN
  [[ -x $BIN ]] || die "PORTICO_BIN=$BIN is not executable"
else
  BIN=$TMP/portico
  LABEL="(built from $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown) at $(date -u +%FT%TZ))"
  log "building ./cmd/portico ..."
  (cd "$REPO" && go build -o "$BIN" ./cmd/portico) || die "go build ./cmd/portico failed"
fi
(cd "$REPO" && go build -o "$TMP/cpbench" ./bench/cpbench) || die "go build ./bench/cpbench failed"

PROFILE_DIR=${PROFILE:-}
if [[ $PROFILE_DIR == 1 ]]; then PROFILE_DIR=$TMP/profile; BENCH_KEEP=1; fi

"$TMP/cpbench" -bin "$BIN" -nginx "$(command -v nginx)" -tmp "$TMP" \
  -sizes "${SIZES:-1000,10000}" -mem-sizes "${MEM_SIZES:-10000,100000}" \
  -writes "${WRITES:-100}" -nginx-writes "${NGINX_WRITES:-20}" -warmup "${WARMUP:-2}" \
  -dataplanes "${DATAPLANES:-10}" -gap "${GAP_MS:-100}ms" -poll "${POLL_MS:-1}ms" -settle "${SETTLE:-5}s" \
  -pg "$PG_URL" -pg-db "${PG_DB:-bench_cp}" -pg-writes "${PG_WRITES:-20}" \
  -profile "$PROFILE_DIR" -profile-seconds "${PROFILE_SECONDS:-20}" \
  -cp-log-level "${CP_LOG_LEVEL:-debug}" -deadline "${BENCH_TIMEOUT:-900}s" -label "${LABEL:-}"
