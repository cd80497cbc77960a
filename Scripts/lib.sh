# shellcheck shell=bash
# Helpers sourced by the scripts in Scripts/: `source Scripts/lib.sh` (after `cd` to the repo root).

PUSHGW_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Prints the absolute path of the repository root.
pushgw_root() { echo "$PUSHGW_ROOT"; }

# Puts the toolchain from /opt/swift first on PATH when it is there; fails when `swift` cannot be found.
ensure_swift() {
    if [[ -x /opt/swift/usr/bin/swift && ":$PATH:" != *":/opt/swift/usr/bin:"* ]]; then
        export PATH="/opt/swift/usr/bin:$PATH"
    fi
    if ! command -v swift >/dev/null; then
        echo "error: swift is not on PATH (and not at /opt/swift/usr/bin): install Swift 6 first" >&2
        return 1
    fi
}

# Prints a TCP port on 127.0.0.1 that the kernel says is free right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_port <port> [seconds] [pid]: waits until something accepts TCP connections on 127.0.0.1:<port>
# (default 10 s); gives up early when process <pid>, the one expected to listen, has exited.
wait_port() {
    local port=$1 deadline=$((SECONDS + ${2:-10})) pid=${3:-}
    while ((SECONDS < deadline)); do
        if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then return 0; fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            echo "error: process $pid exited before listening on 127.0.0.1:$port" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "error: nothing listens on 127.0.0.1:$port" >&2
    return 1
}

# start_redis <dir> <port>: a throw-away redis-server on 127.0.0.1:<port>, no persistence, pid and log in <dir>.
start_redis() {
    local dir port=$2 deadline=$((SECONDS + 10))
    mkdir -p "$1"
    dir=$(cd "$1" && pwd) # redis-server changes directory: give it absolute paths
    rm -f "$dir/redis.pid"
    redis-server --daemonize yes --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" "${@:3}"
    while ((SECONDS < deadline)); do
        if [[ $(timeout 1 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) == PONG ]]; then return 0; fi
        # It wrote its pidfile and died (port taken, say): no point waiting.
        if [[ -s $dir/redis.pid ]] && ! kill -0 "$(<"$dir/redis.pid")" 2>/dev/null; then break; fi
        sleep 0.1
    done
    echo "error: redis-server on 127.0.0.1:$port did not answer PING; its log ($dir/redis.log):" >&2
    tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
    return 1
}

# stop_redis <dir>: stops the redis-server whose pidfile is in <dir> (SIGTERM, then SIGKILL after 5 s).
stop_redis() {
    local pidfile="$1/redis.pid" pid tries=50
    [[ -f $pidfile ]] || return 0
    pid=$(<"$pidfile")
    kill -TERM "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
    while ((tries-- > 0)) && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

# start_redis_cluster <dir>: a local Redis Cluster of three masters with a replica each (SPEC §9) on free loopback
# ports whose cluster bus ports (port + 10000) are free too, one node per <dir>/node<i>, a 1 s cluster-node-timeout
# and a replica that may always take over (validity factor 0: a test kills a master seconds after the start);
# waits until every node reports cluster_state:ok and every replica's link to its master is up, and prints the
# seeds (host:port,…). stop_redis_cluster <dir>.
start_redis_cluster() {
    local dir=$1 ports=() port i deadline
    for i in 0 1 2 3 4 5; do
        port=$(python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    if port <= 55535:
        b = socket.socket()
        try:
            b.bind(("127.0.0.1", port + 10000)); b.close(); s.close(); print(port); break
        except OSError: b.close()
    s.close()')
        start_redis_cluster_node "$dir" "$i" "$port" >&2 || return 1
        ports+=("127.0.0.1:$port")
    done
    redis-cli --cluster create "${ports[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 || {
        echo "error: redis-cli --cluster create failed; its output ($dir/create.log):" >&2
        tail -n 20 "$dir/create.log" >&2
        return 1
    }
    deadline=$((SECONDS + 30))
    for port in "${ports[@]}"; do
        until redis-cli -h 127.0.0.1 -p "${port#*:}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; do
            ((SECONDS < deadline)) || { echo "error: the cluster did not reach cluster_state:ok" >&2; return 1; }
            sleep 0.1
        done
    done
    local replicas
    until replicas=$(for port in "${ports[@]}"; do redis-cli -h 127.0.0.1 -p "${port#*:}" info replication; done |
        grep -c '^master_link_status:up') && ((replicas == 3)); do
        ((SECONDS < deadline)) || { echo "error: the cluster's replicas did not reach their masters" >&2; return 1; }
        sleep 0.1
    done
    local IFS=,
    echo "${ports[*]}"
}

# start_redis_cluster_node <dir> <i> <port>: node i of the cluster in <dir>; again after it was stopped or killed, it
# rejoins with the identity in its nodes.conf (a master whose slots a replica took over comes back as its replica).
start_redis_cluster_node() {
    start_redis "$1/node$2" "$3" --cluster-enabled yes --cluster-config-file nodes.conf \
        --cluster-node-timeout 1000 --cluster-replica-validity-factor 0
}

stop_redis_cluster() {
    local node pids=()
    # All at once: a node takes about 2 s to shut down.
    for node in "$1"/node*; do
        [[ -d $node ]] || continue
        stop_redis "$node" &
        pids+=($!)
    done
    ((${#pids[@]} == 0)) || wait "${pids[@]}"
    return 0
}
