# Rootless podman lane, sourced by run.sh (its helpers: check, check_eq, ok, notok, $T,
# $RT, $repo). A dedicated user, bxrootless, made here (home $T/rootless, /etc/subuid and
# /etc/subgid ranges from useradd, newuidmap/newgidmap from the uidmap package) runs
# podman with $RT as its OCI runtime: run, exec, stop, rm. Its podman storage, runroot
# and $XDG_RUNTIME_DIR (where the runtime keeps its state: podman runs it as root of
# the user's namespace) are under its home. rootless_cleanup removes the user again (its
# processes by pid, the user and its subuid/subgid lines, podman's lock file, the home);
# run.sh's exit trap calls it too, so a failure or an interruption leaves nothing.

RL_USER=bxrootless
RL_GECOS="boxrun engines lane, rootless podman (removed at the end)"
RL_HOME="$T/rootless"
RL_UID=""
RL_IMG=localhost/bxrootless/busybox

rootless_pids() { [ -n "$RL_UID" ] && ps -o pid= -u "$RL_UID" 2>/dev/null; }

# Remove the lane's user and everything it owns; never a user the lane did not make.
rootless_cleanup() {
    local pid
    [ -n "$RL_UID" ] || return 0
    [ "$(getent passwd "$RL_USER" | cut -d: -f5)" = "$RL_GECOS" ] || return 0
    [ -x "$RL_HOME/podman" ] && timeout -k 5 60 "$RL_HOME/podman" rm -a -f -t 0 >/dev/null 2>&1
    for pid in $(rootless_pids); do kill -KILL "$pid" 2>/dev/null; done
    for pid in $(seq 50); do [ -z "$(rootless_pids)" ] && break; sleep 0.1; done
    userdel "$RL_USER" 2>/dev/null # also drops its /etc/subuid and /etc/subgid lines
    rm -f "/dev/shm/libpod_rootless_lock_$RL_UID"
    rm -rf "$RL_HOME"
    RL_UID=""
}

# Make the user, its home and a podman wrapper that runs as it (no systemd session: the
# environment a login would give is set by hand).
rootless_setup() {
    if getent passwd "$RL_USER" >/dev/null; then
        if [ "$(getent passwd "$RL_USER" | cut -d: -f5)" != "$RL_GECOS" ]; then
            notok "rootless: user $RL_USER" "a user of that name exists and is not the lane's: remove it or rename RL_USER"
            return 1
        fi
        RL_UID=$(id -u "$RL_USER") # left by an interrupted run: reclaim it
        rootless_cleanup
    fi
    if ! useradd -M -d "$RL_HOME" -s /bin/sh -c "$RL_GECOS" "$RL_USER" >"$T/rootless-useradd.log" 2>&1; then
        notok "rootless: useradd" "$(short "$(cat "$T/rootless-useradd.log")")"
        return 1
    fi
    RL_UID=$(id -u "$RL_USER")
    if ! grep -q "^$RL_USER:" /etc/subuid || ! grep -q "^$RL_USER:" /etc/subgid; then
        notok "rootless: subordinate ids" "useradd gave $RL_USER no /etc/subuid and /etc/subgid range: set SUB_UID_COUNT and SUB_GID_COUNT in /etc/login.defs"
        rootless_cleanup
        return 1
    fi
    mkdir -p "$RL_HOME/xdg" "$RL_HOME/storage" "$RL_HOME/run" "$RL_HOME/tmp"
    chmod 700 "$RL_HOME/xdg"
    # run.sh's (cgroupfs, file events, the ulimits), with podman's default events file.
    grep -v '^events_logfile_path' "$T/containers.conf" >"$RL_HOME/containers.conf"
    chown -R "$RL_USER:" "$RL_HOME"
    cat >"$RL_HOME/podman" <<EOF
#!/bin/sh
cd "$RL_HOME" || exit 125
exec setpriv --reuid=$RL_USER --regid=$RL_USER --init-groups env -i HOME="$RL_HOME" \\
    USER=$RL_USER LOGNAME=$RL_USER PATH=/usr/sbin:/usr/bin:/sbin:/bin \\
    XDG_RUNTIME_DIR="$RL_HOME/xdg" XDG_CONFIG_HOME="$RL_HOME/config" \\
    XDG_DATA_HOME="$RL_HOME/data" CONTAINERS_CONF="$RL_HOME/containers.conf" \\
    podman --root "$RL_HOME/storage" --runroot "$RL_HOME/run" --tmpdir "$RL_HOME/tmp" \\
    --storage-driver vfs --cgroup-manager cgroupfs --events-backend file \\
    --runtime "$RT" "\$@"
EOF
    chmod 755 "$RL_HOME/podman"
}

lane_rootless() {
    local name="rootless podman" P="$RL_HOME/podman" R=(--network none)
    command -v newuidmap >/dev/null ||
        { notok "$name: newuidmap" "not installed: apt-get install uidmap"; return; }
    rootless_setup || return
    check_eq "$name: user has a subuid range" 1 "$(grep -c "^$RL_USER:" /etc/subuid)"
    check "$name: import busybox image" 0 'sha256:[0-9a-f]{64}' sh -c "tar -C '$T/rootfs' -c . | $P import - $RL_IMG"
    check "$name: run --rm: root inside, mapped to the user" 0 '^0'$'\n'' +0 +'"$RL_UID"' +1' "$P" run --rm "${R[@]}" $RL_IMG sh -c 'id -u; head -1 /proc/self/uid_map'
    check "$name: run --rm exit status" 7 '' "$P" run --rm "${R[@]}" $RL_IMG sh -c 'exit 7'
    check "$name: run -t" 0 '/dev/pts/' "$P" run --rm -t "${R[@]}" $RL_IMG tty
    check "$name: run -d" 0 '^[0-9a-f]{64}' "$P" run -d --name bxr-1 "${R[@]}" $RL_IMG sleep 1000
    check "$name: ps lists it running" 0 'bxr-1 Up' "$P" ps --format '{{.Names}} {{.Status}}'
    check "$name: exec" 0 'sleep 1000' "$P" exec bxr-1 sh -c 'tr "\\0" " " </proc/1/cmdline'
    check "$name: exec exit status" 3 '' "$P" exec bxr-1 sh -c 'exit 3'
    check "$name: exec -t" 0 '/dev/pts/' "$P" exec -t bxr-1 tty
    check "$name: the container runs as the user on the host" 0 "^$RL_UID\$" sh -c "ps -o uid= -p \$($P inspect -f '{{.State.Pid}}' bxr-1) | tr -d ' '"
    check "$name: stop" 0 bxr-1 "$P" stop -t 1 bxr-1
    check "$name: inspect exited" 0 '^exited' "$P" inspect -f '{{.State.Status}}' bxr-1
    check "$name: rm" 0 bxr-1 "$P" rm bxr-1
    check "$name: ps -a empty" 0 '^$' "$P" ps -a -q
    check_eq "$name: runtime state empty" "" "$(ls "$RL_HOME/xdg/$(basename "$RT")" 2>/dev/null | grep -v '^seccomp-cache$')"
    rootless_cleanup
    check_eq "$name: user, subuid and subgid lines removed" 0 "$(cat /etc/passwd /etc/subuid /etc/subgid | grep -c "^$RL_USER:")"
    check_eq "$name: home removed" "" "$(ls -d "$RL_HOME" 2>/dev/null)"
}
