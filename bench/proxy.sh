#!/usr/bin/env bash
# bench/proxy.sh — CPU cost per proxied request: Portico vs nginx (keep-alive reverse proxy).
#
# Layout: backend nginx + wrk on CPU 1; the proxy under test on CPU 0, one proxy at a time.
# Figure of merit: (utime+stime of the proxy during the wrk run) / (requests wrk completed).
# See bench/README.md for the method and how to read the output.
#
# Env:
#   PORTICO_BIN     portico binary to test (default: build ./cmd/portico into a temp dir)
#   BENCH_STANDIN=1 build and test bench/standin (a tuned httputil.ReverseProxy) instead
#   PORTICO_ARGS    extra flags appended to `portico proxy ...`
#   BENCH_SECONDS   measured wrk duration per run (default 10)
#   BENCH_WARMUP    warm-up wrk duration per run (default 2)
#   BENCH_ROUNDS    rounds; the table shows medians (default 1)
#   BENCH_CONNS     wrk connections (default 50)
#   BENCH_KEEP=1    keep the temp dir (configs, logs) after exit
set -euo pipefail

SECONDS_RUN=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-1}
CONNS=${BENCH_CONNS:-50}
PROXY_CPU=0
LOAD_CPU=1
SIZES=(100b 10k)
declare -A SIZE_BYTES=([100b]=100 [10k]=10240)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/portico-bench.XXXXXX")
chmod 755 "$TMP" # nginx workers may run as nobody
CLK_TCK=$(getconf CLK_TCK)
declare -A STARTED=() # PIDs this script started and has not yet reaped; nothing else is ever killed

log() { printf '%s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# children PIDs of $1 (nginx workers); empty if none
children() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true; }

# stop_pid PID: TERM, wait up to 5 s, then KILL it and any children it left behind.
stop_pid() {
  local pid=$1 kids i
  [[ -n ${STARTED[$pid]:-} ]] || return 0
  kids=$(children "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" $kids 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  unset "STARTED[$pid]" # reaped: its number may be reused, never touch it again
}

cleanup() {
  local rc=$? pid
  for pid in "${!STARTED[@]}"; do stop_pid "$pid"; done
  if [[ ${BENCH_KEEP:-0} == 1 || $rc != 0 ]]; then log "logs and configs kept in $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in nginx wrk taskset curl ss awk go; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y nginx-light wrk)"
done
[[ $(nproc) -ge 2 ]] || die "needs 2 CPUs (proxy on CPU $PROXY_CPU, load on CPU $LOAD_CPU)"

# free_port: a random unused TCP port on 127.0.0.1, distinct from those already handed out.
USED_PORTS=" "
# Ports come from below the kernel's ephemeral range (ip_local_port_range starts at 32768
# here), so no outgoing connection (wrk, the proxies' upstream connections, other work on the
# machine) can be holding one as its local port when a proxy binds it.
free_port() {
  local p low
  low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % (low - 20000)))
    [[ $USED_PORTS == *" $p "* ]] && continue
    if [[ -z $(ss -Htln "sport = :$p") ]]; then USED_PORTS+="$p "; echo "$p"; return; fi
  done
  die "no free port"
}

# cpu_ticks PID: utime+stime (clock ticks) of PID plus its children (nginx master + workers).
cpu_ticks() {
  local total=0 p line rest f
  for p in "$1" $(children "$1"); do
    line=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    rest=${line##*) }  # fields after "(comm)": state is field 3
    read -r -a f <<<"$rest"
    total=$((total + f[11] + f[12])) # fields 14 (utime) and 15 (stime)
  done
  echo "$total"
}

# rss_kib PID: VmRSS summed over PID and its children.
rss_kib() {
  local total=0 p v
  for p in "$1" $(children "$1"); do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# wait_ready NAME PID PORT TIMEOUT_S: until GET /100b returns 200 with 100 bytes.
wait_ready() {
  local name=$1 pid=$2 port=$3 deadline=$((SECONDS + $4)) got
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$TMP/$name.log" >&2 || true
      die "$name exited during startup (log: $TMP/$name.log)"
    fi
    got=$(curl -s -o /dev/null --max-time 1 -w '%{http_code} %{size_download}' "http://127.0.0.1:$port/100b" || true)
    [[ $got == "200 100" ]] && return 0
    sleep 0.2
  done
  tail -n 20 "$TMP/$name.log" >&2 || true
  die "$name not serving on 127.0.0.1:$port after $4 s (last: '$got')"
}

# check_bodies NAME PORT: each size comes back 200 with the exact byte count.
check_bodies() {
  local s got
  for s in "${SIZES[@]}"; do
    got=$(curl -s -o /dev/null --max-time 5 -w '%{http_code} %{size_download}' "http://127.0.0.1:$2/$s" || true)
    [[ $got == "200 ${SIZE_BYTES[$s]}" ]] || die "$1 /$s returned '$got', want '200 ${SIZE_BYTES[$s]}'"
  done
}

# run_wrk PORT SIZE SECS OUTFILE: wrk on the load CPU, output to OUTFILE.
run_wrk() {
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$3"s "http://127.0.0.1:$1/$2" >"$4" 2>&1 ||
    die "wrk failed: $(cat "$4")"
}

# parse_wrk OUTFILE: prints "requests errors" (errors = non-2xx/3xx + all socket errors).
parse_wrk() {
  awk '
    /requests in/            { req = $1 }
    /Non-2xx or 3xx/         { err += $NF }
    /Socket errors:/         { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
    END                      { printf "%d %d\n", req, err }' "$1"
}

# --- backend: nginx on CPU 1 serving fixed bodies -------------------------------------------
NGX_USER=""
if [[ $EUID == 0 ]]; then NGX_USER="user nobody $(id -gn nobody);"; fi

nginx_common() { # $1 = instance dir
  cat <<EOF
$NGX_USER
daemon off;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
EOF
}
nginx_temp_paths() { # keep every temp path inside the instance dir
  printf '  client_body_temp_path %s/body; proxy_temp_path %s/proxy; fastcgi_temp_path %s/fastcgi;\n' "$1" "$1" "$1"
  printf '  uwsgi_temp_path %s/uwsgi; scgi_temp_path %s/scgi;\n' "$1" "$1"
}

BACKEND_PORT=$(free_port)
NGINX_PORT=$(free_port)
PORTICO_PORT=$(free_port)
OPS_PORT=$(free_port)

B=$TMP/backend
mkdir -p "$B/www"
head -c 100 /dev/zero | tr '\0' 'a' >"$B/www/100b"
head -c 10240 /dev/zero | tr '\0' 'b' >"$B/www/10k"
chmod -R a+rX "$B"
{
  nginx_common "$B"
  cat <<EOF
http {
  access_log off;
  default_type text/plain;
  keepalive_requests 1000000;
  open_file_cache max=16;
$(nginx_temp_paths "$B")
  server {
    listen 127.0.0.1:$BACKEND_PORT;
    root $B/www;
  }
}
EOF
} >"$B/nginx.conf"

# start_* run in this shell (not in $(...)) so the PID is our child; they set LAST_PID.
start_nginx() { # NAME DIR CPU
  taskset -c "$3" nginx -p "$2" -c "$2/nginx.conf" -e "$2/error.log" >"$TMP/$1.log" 2>&1 &
  LAST_PID=$!
  STARTED[$LAST_PID]=$1
}

# --- peer: nginx keep-alive reverse proxy, 1 worker on CPU 0 ---------------------------------
N=$TMP/nginx
mkdir -p "$N"
{
  nginx_common "$N"
  cat <<EOF
http {
  access_log off;
  keepalive_requests 1000000; # Go's server has no per-connection request cap; match it
$(nginx_temp_paths "$N")
  upstream backend {
    server 127.0.0.1:$BACKEND_PORT;
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
} >"$N/nginx.conf"

# --- Portico: resource-shaped config (DESIGN.md) ---------------------------------------------
# The config gets a folder of its own: Portico watches the config's folder, and logs or wrk
# output written beside it would trigger reloads during the measured runs.
mkdir -p "$TMP/portico-conf"
cat >"$TMP/portico-conf/portico.yaml" <<EOF
apiVersion: portico.dev/v1alpha1
kind: Gateway
metadata: {name: default}
spec:
  listeners: [{name: http, port: $PORTICO_PORT, protocol: HTTP, address: 127.0.0.1}]
---
apiVersion: portico.dev/v1alpha1
kind: Upstream
metadata: {name: backend}
spec:
  endpoints: [{address: "127.0.0.1:$BACKEND_PORT", weight: 1}]
  loadBalancer: {algorithm: round-robin}
---
apiVersion: portico.dev/v1alpha1
kind: Route
metadata: {name: bench}
spec:
  gateways: [default]
  matches: [{path: {type: PathPrefix, value: /}}]
  backends: [{upstream: backend}]
EOF

if [[ -n ${PORTICO_BIN:-} ]]; then
  BIN=$PORTICO_BIN
  [[ -x $BIN ]] || die "PORTICO_BIN=$BIN is not executable"
elif [[ ${BENCH_STANDIN:-0} == 1 ]]; then
  BIN=$TMP/standin
  log "building bench/standin ..."
  (cd "$REPO" && go build -o "$BIN" ./bench/standin) || die "go build ./bench/standin failed"
else
  BIN=$TMP/portico
  log "building ./cmd/portico ..."
  (cd "$REPO" && go build -o "$BIN" ./cmd/portico) || die "go build ./cmd/portico failed"
fi

PORTICO_FLAGS=(proxy --config "$TMP/portico-conf/portico.yaml" --ops-addr "127.0.0.1:$OPS_PORT")
if "$BIN" proxy --help 2>&1 | grep -q 'access-log'; then
  PORTICO_FLAGS+=(--access-log off)
else
  log "WARNING: '$BIN proxy' has no --access-log flag; if it logs requests, its CPU figure is inflated"
fi
# shellcheck disable=SC2206 # PORTICO_ARGS is split on purpose
PORTICO_FLAGS+=(${PORTICO_ARGS:-})

start_portico() {
  # GOMAXPROCS=1: one P on one pinned core, like nginx's single worker (per-core comparison).
  GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$BIN" "${PORTICO_FLAGS[@]}" >"$TMP/portico.log" 2>&1 &
  LAST_PID=$!
  STARTED[$LAST_PID]=portico
}

start_nginx backend "$B" "$LOAD_CPU"
BACKEND_PID=$LAST_PID
wait_ready backend "$BACKEND_PID" "$BACKEND_PORT" 10
check_bodies backend "$BACKEND_PORT"

# cpu_busy CPU: busy ticks (all but idle and iowait) of one CPU, from /proc/stat.
cpu_busy() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

# start_proxy NAME: start nginx or portico on the proxy CPU and wait until it serves both
# bodies correctly. Sets LAST_PID and PORT.
start_proxy() {
  if [[ $1 == nginx ]]; then
    start_nginx nginx "$N" "$PROXY_CPU"; PORT=$NGINX_PORT
    wait_ready nginx "$LAST_PID" "$PORT" 10
  else
    start_portico; PORT=$PORTICO_PORT
    wait_ready portico "$LAST_PID" "$PORT" 60
  fi
  check_bodies "$1" "$PORT"
}

# measure PROXY SIZE ROUND: fresh proxy process, warm-up, measured run, stop. Appends to $TMP/results:
#   round proxy size us/req requests errors rss_kib
measure() {
  local proxy=$1 size=$2 round=$3 pid port out req err t0 t1 b0 b1 us rss l0 l1
  start_proxy "$proxy"; pid=$LAST_PID; port=$PORT
  out=$TMP/wrk-$proxy-$size-$round
  run_wrk "$port" "$size" "$WARMUP" "$out.warmup"
  read -r req err <<<"$(parse_wrk "$out.warmup")"
  ((err == 0 && req > 0)) || die "$proxy /$size warm-up: $req requests, $err errors (see $out.warmup)"

  l0=$(wc -l <"$TMP/$proxy.log"); t0=$(cpu_ticks "$pid"); b0=$(cpu_busy "$PROXY_CPU")
  run_wrk "$port" "$size" "$SECONDS_RUN" "$out"
  t1=$(cpu_ticks "$pid"); b1=$(cpu_busy "$PROXY_CPU"); l1=$(wc -l <"$TMP/$proxy.log")
  # a proxy that logs while under load (per request, reloads) is not measuring proxying alone
  ((l1 == l0)) || log "WARNING: $proxy wrote $((l1 - l0)) log line(s) during the measured run: $(tail -n 1 "$TMP/$proxy.log")"
  read -r req err <<<"$(parse_wrk "$out")"
  kill -0 "$pid" 2>/dev/null || die "$proxy died during the run"
  ((err == 0)) || die "$proxy /$size: $err non-2xx/socket errors in $req requests:$(printf '\n%s' "$(cat "$out")")"
  ((req > 0)) || die "$proxy /$size: no requests completed"
  rss=$(rss_kib "$pid")
  stop_pid "$pid"

  us=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$req" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }')
  printf '%s %s %s %s %s %s %s\n' "$round" "$proxy" "$size" "$us" "$req" "$err" "$rss" >>"$TMP/results"
  # util: the proxy's share of its core; other: CPU PROXY_CPU time not charged to the proxy
  # (other tenants, softirq, interrupts) — a rough noise gauge for this run.
  awk -v r="$round" -v p="$proxy" -v s="$size" -v n="$req" -v d="$SECONDS_RUN" -v t=$((t1 - t0)) \
    -v b=$((b1 - b0)) -v hz="$CLK_TCK" -v us="$us" -v rss="$rss" 'BEGIN {
      printf "round %d  %-7s /%-4s  %9d req  %6d req/s  util %3.0f%%  other %3.0f%%  %7.2f us/req  rss %5.1f MiB\n",
        r, p, s, n, n / d, 100 * t / hz / d, (b > t ? 100 * (b - t) / hz / d : 0), us, rss / 1024 }' >&2
}

log "backend 127.0.0.1:$BACKEND_PORT (CPU $LOAD_CPU), nginx proxy :$NGINX_PORT, portico :$PORTICO_PORT (CPU $PROXY_CPU)"
log "portico: $BIN ${PORTICO_FLAGS[*]}"
log "wrk -t1 -c$CONNS -d${SECONDS_RUN}s after ${WARMUP}s warm-up; $ROUNDS round(s); CLK_TCK=$CLK_TCK"
: >"$TMP/results"
# preflight: both proxies must start and serve before any load is spent
for p in nginx portico; do start_proxy "$p"; stop_pid "$LAST_PID"; done
for ((r = 1; r <= ROUNDS; r++)); do
  for i in "${!SIZES[@]}"; do
    # the two proxies run back to back on the same size, alternating who goes first,
    # so that drift in the machine's noise lands on both alike
    if (((r + i) % 2)); then order=(nginx portico); else order=(portico nginx); fi
    for p in "${order[@]}"; do measure "$p" "${SIZES[$i]}" "$r"; done
  done
done

# --- summary: medians over rounds --------------------------------------------------------------
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { awk -v p="$1" -v s="$2" -v c="$3" '$2 == p && $3 == s { print $c }' "$TMP/results"; }
# per-round ratios: each pairs two runs a few seconds apart, so shared noise partly cancels
round_ratios() {
  awk -v s="$1" '$3 == s { v[$1, $2] = $4; if ($1 > m) m = $1 }
    END { for (r = 1; r <= m; r++) printf "%.3f\n", v[r, "portico"] / v[r, "nginx"] }' "$TMP/results"
}

echo
echo "Portico vs nginx: proxy CPU (user+sys) per request, 1 core each; median of $ROUNDS round(s) of ${SECONDS_RUN}s"
echo "portico = $BIN"
printf '%-5s  %12s  %14s  %6s  %s\n' body nginx_us/req portico_us/req ratio \
  "(nginx req, portico req, errors)  rss MiB nginx/portico"
for s in "${SIZES[@]}"; do
  n_us=$(col nginx "$s" 4 | median); p_us=$(col portico "$s" 4 | median)
  n_req=$(col nginx "$s" 5 | median); p_req=$(col portico "$s" 5 | median)
  errs=$(awk -v s="$s" '$3 == s { e += $6 } END { print e + 0 }' "$TMP/results")
  n_rss=$(col nginx "$s" 7 | median); p_rss=$(col portico "$s" 7 | median)
  awk -v s="$s" -v n="$n_us" -v p="$p_us" -v nr="$n_req" -v pr="$p_req" -v e="$errs" -v nm="$n_rss" -v pm="$p_rss" \
    'BEGIN { printf "%-5s  %12.2f  %14.2f  %5.2fx  (%d, %d, %d)  %.1f/%.1f\n", s, n, p, p / n, nr, pr, e, nm / 1024, pm / 1024 }'
done
if ((ROUNDS > 1)); then
  echo "per-round ratio (median):"
  for s in "${SIZES[@]}"; do
    printf '  %-5s %s  (%s)\n' "$s" "$(round_ratios "$s" | median | awk '{ printf "%.2fx", $1 }')" \
      "$(round_ratios "$s" | awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 }')"
  done
fi
