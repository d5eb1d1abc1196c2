# shellcheck shell=bash
# The real-service workload of bench/run.sh (sourced by it; uses its helpers start_tracer,
# stop_tracer, measure_alone, log, need; its `measure http` runs service_measure): nginx in
# a server namespace behind a routed node namespace — two veth hops each way, the path a
# container's traffic takes — loaded by wrk with keep-alive from a client namespace, sender
# and server pinned as the flood workloads are. Conditions: untraced, `sirqtop serve` (its defaults, listening on
# loopback), `serve --lite`, bpftrace (bench/subset.bt). Interleaved rounds, condition order
# rotated every round; req/s per sample in $raw/service.tsv (report.py makes the table).
#
#   SERVICE_CONDITIONS="untraced floor least serve servelite bpftrace"   floor: the flood's empty
#                      programs on sirqtop's hooks (what any per-packet hook costs here);
#                      least: the same hooks counting exactly, with softirq run time
#   SERVICE_CONNS=32   wrk connections (one wrk thread, pinned to SENDER_CPU)
#   SERVE_PORT=        loopback port of `sirqtop serve` (default 19000 + PID % 1000)

SERVICE_CONDITIONS=${SERVICE_CONDITIONS:-untraced floor least serve servelite bpftrace}
SERVICE_CONNS=${SERVICE_CONNS:-32}
SERVE_PORT=${SERVE_PORT:-$((19000 + $$ % 1000))}
SVC_NSC=sqsvc-$$-c # client (wrk)
SVC_NSN=sqsvc-$$-n # node: routes between the two veth pairs
SVC_NSS=sqsvc-$$-s # server (nginx)
SVC_DIR=           # nginx's config, document root, logs and temp files
SVC_NGINX=         # the running nginx

service_check() {
    local c
    for c in $SERVICE_CONDITIONS; do
        case $c in untraced | floor | least | serve | servelite | bpftrace) ;;
        *) die "unknown service condition '$c' (untraced floor least serve servelite bpftrace)" ;;
        esac
    done
    [[ $SERVICE_CONNS =~ ^[1-9][0-9]*$ ]] || die "SERVICE_CONNS must be a positive integer"
}

# Undoes whatever service_setup did; run.sh's cleanup calls it on any exit.
service_cleanup() {
    local ns p
    if [ -n "$SVC_NGINX" ]; then
        kill -QUIT "$SVC_NGINX" 2>/dev/null && sleep 0.3
        kill -KILL "$SVC_NGINX" 2>/dev/null || true
        SVC_NGINX=
    fi
    for ns in "$SVC_NSC" "$SVC_NSN" "$SVC_NSS"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    [ -n "$SVC_DIR" ] && rm -rf "$SVC_DIR"
    SVC_DIR=
}

service_setup() {
    local x=$(($$ % 250 + 1)) c=sqc$$ n1=sqn$$a n2=sqn$$b s=sqs$$
    SVC_CLIENT_IP=10.231.$x.1
    SVC_SERVER_IP=10.232.$x.2
    need nginx nginx-light
    need wrk wrk
    need curl curl
    ip netns add "$SVC_NSC"
    ip netns add "$SVC_NSN"
    ip netns add "$SVC_NSS"
    ip link add "$c" netns "$SVC_NSC" type veth peer name "$n1" netns "$SVC_NSN"
    ip link add "$s" netns "$SVC_NSS" type veth peer name "$n2" netns "$SVC_NSN"
    ip -n "$SVC_NSC" addr add "$SVC_CLIENT_IP/24" dev "$c"
    ip -n "$SVC_NSN" addr add "10.231.$x.2/24" dev "$n1"
    ip -n "$SVC_NSN" addr add "10.232.$x.1/24" dev "$n2"
    ip -n "$SVC_NSS" addr add "$SVC_SERVER_IP/24" dev "$s"
    for ns in "$SVC_NSC" "$SVC_NSN" "$SVC_NSS"; do ip -n "$ns" link set lo up; done
    ip -n "$SVC_NSC" link set "$c" up
    ip -n "$SVC_NSN" link set "$n1" up
    ip -n "$SVC_NSN" link set "$n2" up
    ip -n "$SVC_NSS" link set "$s" up
    ip -n "$SVC_NSC" route add default via "10.231.$x.2"
    ip -n "$SVC_NSS" route add default via "10.232.$x.1"
    ip netns exec "$SVC_NSN" sysctl -q -w net.ipv4.ip_forward=1

    SVC_DIR=$(mktemp -d /tmp/sqsvc-$$.XXXXXX)
    mkdir -p "$SVC_DIR/html" "$SVC_DIR/tmp"
    # A page the size of nginx's default index.html.
    head -c 600 /dev/zero | tr '\0' 'x' >"$SVC_DIR/html/index.html"
    cat >"$SVC_DIR/nginx.conf" <<EOF
# One worker, no master: the process started is the one serving (and the one stopped).
daemon off;
master_process off;
worker_processes 1;
pid $SVC_DIR/nginx.pid;
error_log $SVC_DIR/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $SVC_DIR/tmp/body;
    proxy_temp_path $SVC_DIR/tmp/proxy;
    fastcgi_temp_path $SVC_DIR/tmp/fastcgi;
    uwsgi_temp_path $SVC_DIR/tmp/uwsgi;
    scgi_temp_path $SVC_DIR/tmp/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {
        listen $SVC_SERVER_IP:8080;
        root $SVC_DIR/html;
    }
}
EOF
    ip netns exec "$SVC_NSS" taskset -c "$RECEIVER_CPU" nginx -c "$SVC_DIR/nginx.conf" -e "$SVC_DIR/error.log" \
        >"$SVC_DIR/nginx.out" 2>&1 &
    SVC_NGINX=$!
    local i
    for i in $(seq 100); do
        [ -n "$(ip netns exec "$SVC_NSS" ss -Hltn "sport = :8080" 2>/dev/null)" ] && break
        kill -0 "$SVC_NGINX" 2>/dev/null || die "nginx did not start: $(tail -c 300 "$SVC_DIR/error.log" "$SVC_DIR/nginx.out" 2>/dev/null | tr '\n' ' ')"
        sleep 0.05
    done
    ip netns exec "$SVC_NSC" wrk -t1 -c1 -d1s "http://$SVC_SERVER_IP:8080/" >/dev/null 2>&1 ||
        die "wrk could not reach nginx over $SVC_NSC -> $SVC_NSN -> $SVC_NSS"
    log "service: nginx in $SVC_NSS ($SVC_SERVER_IP:8080, cpu $RECEIVER_CPU) <- $SVC_NSN <- wrk in $SVC_NSC (cpu $SENDER_CPU, $SERVICE_CONNS connections)"
}

# One wrk run; prints "req_per_s transfer_mib_per_s errors".
service_measure() { # service_measure SECS OUTFILE
    timeout $(($1 + 30)) ip netns exec "$SVC_NSC" taskset -c "$SENDER_CPU" wrk -t1 -c"$SERVICE_CONNS" -d"$1s" \
        "http://$SVC_SERVER_IP:8080/" >"$2" 2>&1 || true
    awk '/^Requests\/sec:/ { r = $2 }
         /^Transfer\/sec:/ { t = $2; if (t ~ /KB$/) t /= 1024; else if (t ~ /GB$/) t *= 1024; else t += 0 }
         /Non-2xx|Socket errors/ { e = 1 }
         END { if (r == "") r = "nan"; if (t == "") t = "nan"; print r, t, e + 0 }' "$2"
}

# Checks that a `serve` condition saw the service's traffic: its /metrics names the node's
# veths. Prints the number of series that mention them (0 = it missed the traffic).
service_scrape() { # service_scrape OUTFILE
    curl -s --max-time 5 "http://127.0.0.1:$SERVE_PORT/metrics" >"$1" 2>/dev/null || true
    grep -c "sqn$$[ab]" "$1" 2>/dev/null || true
}

service_matrix() {
    local conds n r p c base res v t e company series
    read -r -a conds <<<"$SERVICE_CONDITIONS"
    n=${#conds[@]}
    service_setup
    log "service matrix: $REPS rounds x $n conditions x ${SECS}s (~$(((REPS * n * (SECS + 3) + 59) / 60)) min)"
    service_measure 2 "$raw/service-warmup.txt" >/dev/null
    printf 'round\tpos\tcondition\treq_per_s\tmib_per_s\terrors\tready_ms\tseries\tload1\tforeign_progs\n' >"$raw/service.tsv"
    for ((r = 1; r <= REPS; r++)); do
        for ((p = 0; p < n; p++)); do
            c=${conds[$(((p + r - 1) % n))]}
            base=$raw/svc-r$r-$c
            READY_MS=
            case $c in
            floor) start_tracer floor "$base" || continue ;;
            least) start_tracer least "$base" || continue ;;
            serve) start_tracer serve "$base" || continue ;;
            servelite) start_tracer serve "$base" --lite || continue ;;
            bpftrace) start_tracer bpftrace "$base" || continue ;;
            esac
            res=$(measure_alone http "$SECS" "$base.wrk.txt")
            company=$(awk '{ print $3 }' "$base.wrk.txt.foreign" | sort -u | wc -l)
            series=
            [[ $c == serve* ]] && series=$(service_scrape "$base.metrics.txt")
            [ "$c" != untraced ] && stop_tracer
            read -r v t e <<<"$res"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$p" "$c" "$v" "$t" "$e" "$READY_MS" \
                "$series" "$(loadavg)" "$company" >>"$raw/service.tsv"
            log "service round $r/$REPS $c: $v req/s$([ -n "$series" ] && echo ", $series series of its veths")"
        done
    done
    service_cleanup
}
