#!/usr/bin/env bash
# make cluster: a local livegate cluster on loopback, in the foreground until Ctrl-C.
#   redis-server  127.0.0.1:$REDIS_PORT   (default 6391, no persistence)
#   livegate ×3   127.0.0.1:$NODE_PORT..+2 (default 8091-8093, Redis engine, dev keys)
#   nginx         127.0.0.1:$LB_PORT       (default 8090: affinity by client address, websocket upgrades)
# Everything lives under $CLUSTER_DIR (default target/cluster): logs, nginx config, Redis files.
# Ctrl-C (or SIGTERM) drains the nodes (SIGTERM each: see docs/operations.md) and stops the rest.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${LIVEGATE_BIN:-$root/target/debug/livegate}"
LB_PORT="${LB_PORT:-8090}"
NODE_PORT="${NODE_PORT:-8091}"
REDIS_PORT="${REDIS_PORT:-6391}"
WORK="${CLUSTER_DIR:-$root/target/cluster}"
PREFIX="${CLUSTER_PREFIX:-livegate}"
SECRET="livegate-dev-secret-do-not-use-in-production"
PUBLISH_KEY="livegate-dev-publish-key"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

for tool in "$BIN" "$NGINX" "$(command -v redis-server || true)"; do
  if [ ! -x "$tool" ]; then
    echo "cluster: missing ${tool:-redis-server} (cargo build; apt-get install nginx redis-server)" >&2
    exit 1
  fi
done

rm -rf "$WORK"
mkdir -p "$WORK/redis" "$WORK/tmp"
chmod 0777 "$WORK/tmp"

pids=()
stopping=0
stop_all() {
  [ "$stopping" = 1 ] && return
  stopping=1
  echo "cluster: stopping (draining the nodes)..."
  # Nodes first (SIGTERM = graceful drain), then the load balancer and Redis.
  for pid in "${node_pids[@]:-}"; do [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${node_pids[@]:-}"; do [ -n "$pid" ] && wait "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "cluster: stopped"
}
trap 'stop_all; exit 0' INT TERM
trap 'stop_all' EXIT

redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
  --dir "$WORK/redis" --logfile "$WORK/redis.log" &
pids+=($!)

node_pids=()
upstreams=""
for i in 0 1 2; do
  port=$((NODE_PORT + i))
  LIVEGATE_LISTEN="127.0.0.1:$port" LIVEGATE_ENGINE=redis \
    LIVEGATE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT" LIVEGATE_REDIS_PREFIX="$PREFIX" \
    LIVEGATE_JWT_HMAC_SECRET="$SECRET" LIVEGATE_PUBLISH_API_KEY="$PUBLISH_KEY" \
    LIVEGATE_DRAIN_WINDOW="${LIVEGATE_DRAIN_WINDOW:-3s}" LIVEGATE_LOG="${LIVEGATE_LOG:-info}" NO_COLOR=1 \
    "$BIN" serve > "$WORK/node-$((i + 1)).log" 2>&1 &
  node_pids+=($!)
  upstreams+="        server 127.0.0.1:$port max_fails=0;"$'\n'
done

python3 - "$root/deploy/local/nginx.conf.template" "$WORK/nginx.conf" "$WORK" "$LB_PORT" "$upstreams" <<'PY'
import sys
template, out, work, lb_port, upstreams = sys.argv[1:]
text = open(template).read()
text = text.replace("@WORK@", work).replace("@LB_PORT@", lb_port).replace("@UPSTREAMS@\n", upstreams)
open(out, "w").write(text)
PY
"$NGINX" -e "$WORK/nginx-error.log" -p "$WORK" -c "$WORK/nginx.conf" -g "daemon off;" &
pids+=($!)

# Ready when every node answers /readyz (Redis connected, subscriptions restored) and nginx proxies.
deadline=$((SECONDS + 30))
for url in "http://127.0.0.1:$NODE_PORT" "http://127.0.0.1:$((NODE_PORT + 1))" "http://127.0.0.1:$((NODE_PORT + 2))" "http://127.0.0.1:$LB_PORT"; do
  until curl -sf -o /dev/null "$url/readyz"; do
    if [ $SECONDS -ge $deadline ]; then
      echo "cluster: $url/readyz did not answer 200 within 30s; logs in $WORK" >&2
      tail -n 5 "$WORK"/*.log >&2 || true
      exit 1
    fi
    sleep 0.2
  done
done

token="$(LIVEGATE_JWT_HMAC_SECRET="$SECRET" "$BIN" dev-token --permissions all)"
project="11111111-1111-4111-8111-111111111111"
lb="http://127.0.0.1:$LB_PORT"
cat <<BANNER

  livegate local cluster is up: 3 nodes on Redis, behind nginx

  Load balancer  $lb   (nginx, affinity by client address; websocket upgrades)
  Nodes          http://127.0.0.1:$NODE_PORT  :$((NODE_PORT + 1))  :$((NODE_PORT + 2))   (/readyz /metrics)
  Redis          redis://127.0.0.1:$REDIS_PORT   prefix "$PREFIX"
  Logs           $WORK/{node-1,node-2,node-3,nginx-error,nginx-access,redis}.log

  Connect    io("$lb/v2/live-updates", { path: "/v2/live-updates/socket.io/",
               auth: { token: "<dev token>", project_id: "$project" } })
  Dev token  $token
  Publish    curl -X POST $lb/api/v1/publish -H 'Authorization: Bearer $PUBLISH_KEY' -d @publication.json
  Drain one  kill -TERM ${node_pids[0]}   (node 1: its clients move to the others)

  Ctrl-C stops everything.
cluster ready
BANNER

# Stay in the foreground until Ctrl-C, or until Redis or nginx exits on its own (a node may be
# drained and stopped by hand: the others go on).
wait -n "${pids[@]}" || true
if [ "$stopping" = 0 ]; then
  echo "cluster: a process exited on its own; stopping the rest" >&2
  tail -n 5 "$WORK"/*.log >&2 || true
fi
