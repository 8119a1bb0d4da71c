#!/usr/bin/env bash
# Calls per second through the stack: SIPp's uac places calls (INVITE/100/180/200/ACK/BYE/200,
# no hold) against esg-ua, at rising rates, each for a fixed number of calls; a rate counts when
# every call succeeds. For scale, the same against SIPp's own uas.
#   [RATES="500 1000"] [REF_RATES="8000"] bench/ua_cps.sh [CALLS_PER_STEP]   (after scripts/test)
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${1:-3000}
ua=build/esg-ua
[ -x "$ua" ] || { echo "build esg-ua first (scripts/test)"; exit 2; }
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_step() {  # target_port rate -> prints "rate ok/total elapsed"
  local port=$1 rate=$2 start end ok
  start=$(date +%s.%N)
  (cd "$tmp" && sipp -sn uac "127.0.0.1:$port" -i 127.0.0.1 -p "$(free_port)" -m "$calls" \
    -r "$rate" -l 20000 -nostdin -nd -t u1 -timeout 120 -max_socket 65000 >"$tmp/sipp.out" 2>&1) || true
  end=$(date +%s.%N)
  ok=$(grep -E "Successful call" "$tmp/sipp.out" | awk -F'|' '{gsub(/ /,"",$3); print $3}' | tail -1)
  echo "$rate ${ok:-0}/$calls $(python3 -c "print(round($end-$start,2))")s"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
$ua --udp 127.0.0.1:0 --workers 1 >"$tmp/ua.out" 2>&1 &
sleep 0.5
port=$(grep -m1 "listening on udp" "$tmp/ua.out" | sed 's/.*://')
echo "SIPp uac -> esg-ua (1 worker): rate ok/total wall"
for rate in ${RATES:-500 1000 2000 4000 8000}; do run_step "$port" "$rate"; done
kill %1 2>/dev/null || true
sport=$(free_port)
(cd "$tmp" && sipp -sn uas -i 127.0.0.1 -p "$sport" -nostdin -nd -t u1 >/dev/null 2>&1 &)
sleep 0.5
echo "SIPp uac -> SIPp uas (reference): rate ok/total wall"
for rate in ${REF_RATES:-2000 8000}; do run_step "$sport" "$rate"; done
pkill -f "sipp -sn uas -i 127.0.0.1 -p $sport" || true
