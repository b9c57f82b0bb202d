# shellcheck shell=bash
# The Python venv and moto start-up shared by scripts/test and scripts/bench.
# Source it; do not run it.
#
# The sourcing script must first `cd` to the repository root, set ROOT=$PWD,
# define say() and die() (messages carry that script's name) and create
# target/. Then:
#
#   prepare_venv   .venv from requirements-test.txt (rebuilt when that file
#                  or python3 changes); sets VENV.
#   start_moto     installs EXIT/INT/TERM traps that stop moto, starts moto
#                  (scripts/moto_launcher.py) on a free 127.0.0.1 port with its
#                  log in $MOTO_LOG (default target/moto.log), waits until it
#                  answers and switches on its Step Functions interpreter;
#                  sets ENDPOINT and MOTO_PID.
#   stop_moto      stops that moto (idempotent; the EXIT trap calls it).

# ---------------------------------------------------------------- Python venv
prepare_venv() {
    VENV=$ROOT/.venv
    local stamp=$VENV/.rotor-requirements want started
    want="$(python3 --version 2>&1) $(sha256sum requirements-test.txt | cut -d' ' -f1)"
    if [[ ! -x $VENV/bin/python || ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
        say "creating .venv from requirements-test.txt (about a minute)"
        started=$SECONDS
        python3 -m venv --clear "$VENV" ||
            die "python3 -m venv failed (on Debian: apt-get install python3-venv)."
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input \
            -r requirements-test.txt || die "pip install -r requirements-test.txt failed."
        printf '%s' "$want" >"$stamp"
        say ".venv ready in $((SECONDS - started)) s"
    fi
}

# ---------------------------------------------------------------- moto
MOTO_PID=

# shellcheck disable=SC2317  # invoked by the EXIT trap
stop_moto() {
    if [[ -n $MOTO_PID ]] && kill -0 "$MOTO_PID" 2>/dev/null; then
        kill "$MOTO_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$MOTO_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
    fi
    MOTO_PID=
}

start_moto() {
    MOTO_LOG=${MOTO_LOG:-$ROOT/target/moto.log}
    local log_name=${MOTO_LOG#"$ROOT"/} port
    trap stop_moto EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    ENDPOINT=http://127.0.0.1:$port
    say "starting moto on $ENDPOINT (log: $log_name)"
    MOTO_PORT=$port "$VENV/bin/python" scripts/moto_launcher.py "$port" >"$MOTO_LOG" 2>&1 </dev/null &
    MOTO_PID=$!

    # Wait (60 s at most) until /moto-api/ answers, or moto dies.
    if ! "$VENV/bin/python" - "$ENDPOINT/moto-api/" "$MOTO_PID" <<'EOF'; then
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("moto exited before it was ready")
    try:
        urllib.request.urlopen(url, timeout=2).read()
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit("moto did not answer %s within 60 s" % url)
EOF
        printf '%s\n' "----- $log_name -----" >&2
        cat "$MOTO_LOG" >&2 || true
        printf '%s\n' '---------------------------' >&2
        die "moto did not start (see its log above)."
    fi

    # Switch on moto's real Step Functions interpreter (a process-wide setting that
    # /moto-api/reset leaves alone; tests/support re-posts it after a reset anyway).
    "$VENV/bin/python" - "$ENDPOINT/moto-api/config" <<'EOF' || die "POST /moto-api/config failed."
import json, sys, urllib.request
req = urllib.request.Request(
    sys.argv[1],
    data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
    headers={"Content-Type": "application/json"},
    method="POST",
)
urllib.request.urlopen(req, timeout=10).read()
EOF
}
