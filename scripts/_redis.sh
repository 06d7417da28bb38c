# Sourced by scripts/demo: a local redis-server for the demo, stopped with it.
# demo_redis_start PORT DIR starts one on 127.0.0.1:PORT (data and log in DIR)
# unless one already answers there; demo_redis_stop shuts down only a server
# that demo_redis_start started, so one that was running before is left alone.
DEMO_REDIS_STARTED=""

demo_redis_start() {
    local port=$1 dir=$2
    if redis-cli -p "$port" ping >/dev/null 2>&1; then
        return 0
    fi
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" \
        --daemonize yes --logfile "$dir/redis.log" --save "" >/dev/null
    DEMO_REDIS_STARTED=$port
    local tries=0
    until redis-cli -p "$port" ping >/dev/null 2>&1; do
        tries=$((tries + 1))
        if [ "$tries" -ge 50 ]; then
            echo "redis-server did not start on port $port; see $dir/redis.log" >&2
            return 1
        fi
        sleep 0.1
    done
}

demo_redis_stop() {
    if [ -n "$DEMO_REDIS_STARTED" ]; then
        redis-cli -p "$DEMO_REDIS_STARTED" shutdown nosave >/dev/null 2>&1 || true
        echo "Stopped the demo's redis-server on port $DEMO_REDIS_STARTED."
        DEMO_REDIS_STARTED=""
    fi
}
