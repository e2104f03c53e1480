#!/usr/bin/env bash
# The gateway benchmark (bench/README.md, "Gateway"): in one run, on one
# static nginx upstream (bench/nginx/upstream.conf.in), side by side:
#   direct      wrk hits the upstream itself
#   nginx hop   a second nginx, proxy_pass with keepalive 64 (PEERS.md)
#   portkey     Portkey's gateway 1.15.2, headless, two targets
#               load-balanced through x-portkey-config
#   switchyard  `switchyard serve`, two deployments on the upstream
# Closed loop: Debian wrk, 1 thread, 32 connections, DURATION s each.
# Open loop: bench/openloop.cpp (switchyard-openloop) at RATE req/s over 32
# keep-alive connections, latency from each request's scheduled send time;
# "added" p99 is a target's p99 minus the direct upstream's, same rate.
# Everything binds 127.0.0.1; every process this script starts is stopped
# when it exits (trap), and nothing else is touched.
#
# usage: bench/gateway.sh            (after building switchyard and
#                                     switchyard-openloop in build/)
# env:   BUILD_DIR (build), SWITCHYARD (its switchyard binary),
#        DURATION (8), RATE (5000), PORTKEY_DIR (~/.cache/switchyard-bench/portkey)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
switchyard=${SWITCHYARD:-$build/bin/switchyard}
openloop=${OPENLOOP:-$build/bin/switchyard-openloop}
duration=${DURATION:-8}
rate=${RATE:-5000}
connections=32
portkey_dir=${PORTKEY_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchyard-bench/portkey}
portkey_version=1.15.2

say() { echo "[gateway.sh] $*" >&2; }

# nginx-light and wrk are for this benchmark only, not build requirements.
"$root/scripts/install-deps.sh" nginx-light wrk >&2
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $nginx ]] || { say "nginx not found after install-deps.sh"; exit 1; }
command -v wrk >/dev/null || { say "wrk not found after install-deps.sh"; exit 1; }
[[ -x $openloop ]] || { say "no $openloop: cmake --build build --target switchyard-openloop"; exit 1; }

load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
work=$(mktemp -d /tmp/switchyard-gateway-bench-XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Waits until 127.0.0.1:$1 accepts a connection and $2 (a pid) still runs.
wait_port() {
  local i
  for i in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || return 1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
# Fails unless every listener of pid $1 is on 127.0.0.1.
check_loopback() {
  local bad
  bad=$(ss -Hltnp 2>/dev/null | grep "pid=$1," | awk '{print $4}' | grep -v '^127\.0\.0\.1:' || true)
  if [[ -n $bad ]]; then say "pid $1 listens on $bad, not loopback only"; exit 1; fi
}

# Call right after starting a server in the background: records its pid
# for the trap; succeeds once it accepts on 127.0.0.1:$1 and listens on
# loopback only.
came_up() {
  pids+=($!)
  wait_port "$1" "${pids[-1]}" && check_loopback "${pids[-1]}"
}

up_port=$(free_port)
mkdir -p "$work/up"
sed -e "s#@DIR@#$work/up#g" -e "s#@PORT@#$up_port#g" "$root/bench/nginx/upstream.conf.in" > "$work/up/nginx.conf"
: > "$work/up/extra.conf"
"$nginx" -c "$work/up/nginx.conf" -p "$work/up" -e "$work/up/error.log" &
came_up "$up_port" || { say "the upstream nginx did not start: $(cat "$work/up/error.log")"; exit 1; }

# The proxy floor: its own nginx (one worker, like the upstream), so that the
# hop does not share the upstream's worker; PEERS.md's keepalive settings.
hop_port=$(free_port)
mkdir -p "$work/hop"
cat > "$work/hop/nginx.conf" <<CONF
daemon off;
worker_processes 1;
worker_rlimit_nofile 16384;
pid $work/hop/nginx.pid;
error_log $work/hop/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  client_body_temp_path $work/hop/body;
  proxy_temp_path $work/hop/proxy;
  fastcgi_temp_path $work/hop/fastcgi;
  uwsgi_temp_path $work/hop/uwsgi;
  scgi_temp_path $work/hop/scgi;
  upstream static_upstream {
    server 127.0.0.1:$up_port;
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:$hop_port backlog=4096;
    location / {
      proxy_pass http://static_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
"$nginx" -c "$work/hop/nginx.conf" -p "$work/hop" -e "$work/hop/error.log" &
came_up "$hop_port" || { say "the nginx hop did not start: $(cat "$work/hop/error.log")"; exit 1; }

body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'
printf '%s' "$body" > "$work/body.json"

# Portkey (skipped, with the reason, when node/npm or the package is missing).
portkey_port=""
portkey_skip=""
portkey_config="{\"strategy\":{\"mode\":\"loadbalance\"},\"targets\":[{\"provider\":\"openai\",\"api_key\":\"sk-a\",\"custom_host\":\"http://127.0.0.1:$up_port/v1\",\"weight\":0.7},{\"provider\":\"openai\",\"api_key\":\"sk-b\",\"custom_host\":\"http://127.0.0.1:$up_port/v1\",\"weight\":0.3}]}"
start_js="$portkey_dir/node_modules/@portkey-ai/gateway/build/start-server.js"
if ! command -v node >/dev/null; then
  portkey_skip="node is not installed"
else
  if [[ ! -f $start_js ]] && command -v npm >/dev/null; then
    say "installing @portkey-ai/gateway@$portkey_version into $portkey_dir"
    npm install --prefix "$portkey_dir" "@portkey-ai/gateway@$portkey_version" \
      --no-audit --no-fund --ignore-scripts >&2 || true
  fi
  [[ -f $start_js ]] || portkey_skip="@portkey-ai/gateway@$portkey_version is not installed and npm could not install it"
fi
if [[ -z $portkey_skip ]]; then
  # Portkey's server passes no hostname to listen(): force loopback.
  cat > "$work/loopback.mjs" <<'MJS'
import net from 'node:net';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] !== null && typeof args[0] === 'object') {
    args[0] = { ...args[0], host: '127.0.0.1' };
  } else if (typeof args[0] === 'number' || /^\d+$/.test(String(args[0]))) {
    if (typeof args[1] === 'string') args[1] = '127.0.0.1';
    else args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
MJS
  portkey_port=$(free_port)
  NODE_ENV=production node --import "$work/loopback.mjs" "$start_js" --port="$portkey_port" --headless \
    > "$work/portkey.log" 2>&1 &
  if ! came_up "$portkey_port"; then
    portkey_skip="Portkey did not start: $(tail -3 "$work/portkey.log" | tr '\n' ' ')"
    portkey_port=""
  fi
fi

# switchyard serve: two deployments of one group on the upstream (weights
# as Portkey's two targets).
serve_port=$(free_port)
cat > "$work/serve.json" <<JSON
{"model_list": [
  {"model_name": "gpt-4o-mini", "litellm_params": {"model": "openai/gpt-4o-mini",
   "api_base": "http://127.0.0.1:$up_port/v1", "api_key": "sk-a", "weight": 0.7}},
  {"model_name": "gpt-4o-mini", "litellm_params": {"model": "openai/gpt-4o-mini",
   "api_base": "http://127.0.0.1:$up_port/v1", "api_key": "sk-b", "weight": 0.3}}],
 "router_settings": {"routing_strategy": "simple-shuffle"}}
JSON
serve_skip=""
if [[ ! -x $switchyard ]]; then
  serve_skip="no $switchyard"
elif ! grep -q 'serve' <<<"$("$switchyard" --help 2>&1 || true)"; then
  serve_skip="$switchyard has no serve command (branch gateway not merged yet)"
else
  # One I/O thread, as the nginx hop has one worker process.
  "$switchyard" serve --config "$work/serve.json" --host 127.0.0.1 --port "$serve_port" \
    --threads 1 > "$work/serve.log" 2>&1 &
  if ! came_up "$serve_port"; then
    serve_skip="switchyard serve did not start: $(tail -3 "$work/serve.log" | tr '\n' ' ')"
  fi
  serve_pid=${pids[-1]}
fi

# Each target answers the upstream's body once before it is timed.
check_answer() { # name port [header]
  local out
  out=$(curl -sS --max-time 10 -H 'Content-Type: application/json' ${3:+-H "$3"} \
        -d "$body" "http://127.0.0.1:$2/v1/chat/completions" || true)
  if ! grep -q '"chat.completion"' <<<"$out"; then
    say "$1 did not answer a chat.completion: ${out:0:300}"
    return 1
  fi
}
check_answer direct "$up_port"
check_answer "nginx hop" "$hop_port"
if [[ -n $portkey_port ]] && ! check_answer portkey "$portkey_port" "x-portkey-config: $portkey_config"; then
  portkey_skip="Portkey did not answer the upstream's body"; portkey_port=""
fi
if [[ -z $serve_skip ]] && ! check_answer switchyard "$serve_port"; then
  serve_skip="switchyard serve did not answer the upstream's body"
fi

# wrk: POST the body (with an optional header) and print req/s, p50, p99.
lua_for() { # file [header-json-escaped]
  {
    echo 'wrk.method = "POST"'
    echo "wrk.body = [[${body}]]"
    echo 'wrk.headers["Content-Type"] = "application/json"'
    if [[ -n ${2:-} ]]; then echo "wrk.headers[\"x-portkey-config\"] = [[${2}]]"; fi
  } > "$1"
}
to_ms() { # wrk's "123.45us" / "1.23ms" / "1.2s" -> ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
# CPU seconds (user + system) a process has used so far.
cpu_seconds() { # pid
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"
}
declare -A rps p50 p99 errs
serve_cpu_us=""
run_wrk() { # name port lua
  say "wrk -t1 -c$connections -d${duration}s: $1"
  local out cpu0=""
  [[ $1 == switchyard ]] && cpu0=$(cpu_seconds "$serve_pid")
  out=$(wrk -t1 -c"$connections" -d"${duration}s" --latency -s "$3" "http://127.0.0.1:$2/v1/chat/completions")
  if [[ -n $cpu0 ]]; then
    # serve's own CPU per request: robust to the machine's other load,
    # unlike req/s.
    serve_cpu_us=$(awk -v a="$cpu0" -v b="$(cpu_seconds "$serve_pid")" \
      -v n="$(awk '/requests in/ { print $1 }' <<<"$out")" 'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1e6 / n }')
  fi
  rps[$1]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$out")
  p50[$1]=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99[$1]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  errs[$1]=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' <<<"$out")
}
lua_for "$work/plain.lua"
lua_for "$work/portkey.lua" "$portkey_config"
run_wrk direct "$up_port" "$work/plain.lua"
run_wrk "nginx hop" "$hop_port" "$work/plain.lua"
[[ -n $portkey_port ]] && run_wrk portkey "$portkey_port" "$work/portkey.lua"
[[ -z $serve_skip ]] && run_wrk switchyard "$serve_port" "$work/plain.lua"

# Open loop at RATE req/s (Portkey is not: it saturates far below it).
declare -A ol_p50 ol_p99 ol_done ol_sent ol_err ol_fail
run_open() { # name port
  say "open loop, $rate req/s, $connections connections, ${duration}s: $1"
  local out fields
  out=$("$openloop" --port "$2" --rate "$rate" --duration "$duration" --warmup 1 \
        --connections "$connections" --body-file "$work/body.json" 2>"$work/openloop.err" || true)
  # p50 ms, p99 ms, completed, sent, errors; nothing when it printed no result.
  fields=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(round(d["p50_us"]/1000, 3), round(d["p99_us"]/1000, 3), d["completed"], d["sent"], d["errors"])' "$out" 2>/dev/null || true)
  if [[ -z $fields ]]; then
    ol_fail[$1]="failed: $(tr '\n' ' ' < "$work/openloop.err")"
    say "${ol_fail[$1]}"
    return 0
  fi
  read -r "ol_p50[$1]" "ol_p99[$1]" "ol_done[$1]" "ol_sent[$1]" "ol_err[$1]" <<<"$fields"
}
run_open direct "$up_port"
run_open "nginx hop" "$hop_port"
[[ -z $serve_skip ]] && run_open switchyard "$serve_port"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo "Gateway benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $load_at_start at start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "closed loop: wrk -t1 -c$connections -d${duration}s, POST /v1/chat/completions, 127.0.0.1"
printf '%-12s %10s %9s %9s %7s %12s %14s\n' target req/s p50_ms p99_ms errors "x portkey" "x nginx hop"
for t in direct "nginx hop" portkey switchyard; do
  if [[ -z ${rps[$t]:-} ]]; then
    reason=$([[ $t == portkey ]] && echo "$portkey_skip" || echo "$serve_skip")
    printf '%-12s skipped: %s\n' "$t" "$reason"
    continue
  fi
  printf '%-12s %10s %9s %9s %7s %12s %14s\n' "$t" "${rps[$t]}" "${p50[$t]}" "${p99[$t]}" "${errs[$t]}" \
    "$(ratio "${rps[$t]}" "${rps[portkey]:-0}")" "$(ratio "${rps[$t]}" "${rps[nginx hop]}")"
done
[[ -n $serve_cpu_us ]] && echo "switchyard serve CPU per request (user + system, closed loop): $serve_cpu_us us"
echo
echo "open loop: switchyard-openloop, $rate req/s offered, $connections connections, ${duration}s after 1s warm-up; latency from the scheduled send time"
printf '%-12s %9s %9s %14s %11s %7s\n' target p50_ms p99_ms "p99 added ms" completed errors
for t in direct "nginx hop" switchyard; do
  if [[ -n ${ol_fail[$t]:-} ]]; then printf '%-12s %s\n' "$t" "${ol_fail[$t]}"; continue; fi
  [[ -z ${ol_p99[$t]:-} ]] && continue
  printf '%-12s %9s %9s %14s %11s %7s\n' "$t" "${ol_p50[$t]}" "${ol_p99[$t]}" \
    "$(awk -v a="${ol_p99[$t]}" -v b="${ol_p99[direct]}" 'BEGIN { printf "%.3f", a - b }')" \
    "${ol_done[$t]}/${ol_sent[$t]}" "${ol_err[$t]}"
done
if awk -v d="${ol_p99[direct]:-0}" 'BEGIN { exit !(d > 1) }'; then
  echo "note: the direct upstream's own p99 is ${ol_p99[direct]} ms at $rate req/s: the machine stalled"
  echo "      during the run (other processes), so p99 added is not meaningful; run again when it is quiet"
fi
echo
echo "targets"
verdict() { # name value cmp limit
  local met
  met=$(awk -v v="$2" -v l="$4" -v c="$3" 'BEGIN { print ((c == ">=" ? v >= l : v <= l) ? "met" : "MISSED") }')
  printf '  [%-6s] %-48s %8s %s %s\n' "$met" "$1" "$2" "$3" "$4"
}
if [[ -n ${rps[switchyard]:-} ]]; then
  [[ -n ${rps[portkey]:-} ]] && verdict "switchyard req/s / portkey req/s" "$(ratio "${rps[switchyard]}" "${rps[portkey]}")" ">=" 25
  verdict "switchyard req/s / nginx hop req/s" "$(ratio "${rps[switchyard]}" "${rps[nginx hop]}")" ">=" 0.4
  if [[ -n ${ol_p99[switchyard]:-} && -n ${ol_p99[direct]:-} ]]; then
    verdict "switchyard p99 added at $rate req/s (ms)" \
      "$(awk -v a="${ol_p99[switchyard]}" -v b="${ol_p99[direct]}" 'BEGIN { printf "%.3f", a - b }')" "<=" 1
  else
    printf '  [%-6s] %s\n' MISSED "switchyard p99 added at $rate req/s: the open loop failed (above)"
  fi
else
  echo "  switchyard skipped: $serve_skip"
fi
