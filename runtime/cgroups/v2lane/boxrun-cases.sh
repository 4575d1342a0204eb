#!/bin/sh
# boxrun on a pure cgroup v2 system (runs inside the lane's VM, see
# stage2.sh): limits read back from /sys/fs/cgroup/boxrun/<id>/ and enforced.
# Each case prints "V2LANE-CASE <name> ok" or "V2LANE-CASE <name> FAILED: why".
# The bundles (/lane/bundles/<case>/config.json, rootfs /lane/rootfs) are
# made by run.sh.
BR="/lane/boxrun --root /run/boxrun"
CG=/sys/fs/cgroup/boxrun
errs=""

report() {
    if [ -z "$errs" ]; then
        echo "V2LANE-CASE $1 ok"
    else
        echo "V2LANE-CASE $1 FAILED:$errs"
    fi
    errs=""
}

err() { errs="$errs $*;"; }

# want FILE VALUE: the file's content (trimmed) must be VALUE
want() {
    got=$(cat "$1" 2>&1)
    [ "$got" = "$2" ] || err "${1#$CG/} is '$got', want '$2'"
}

# wait_for FILE PATTERN SECONDS: bounded poll for a container's output line
wait_for() {
    n=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        [ $n -ge $(($3 * 10)) ] && return 1
        sleep 0.1
        n=$((n + 1))
    done
}

# the init pid of a container, from `boxrun state`
pid_of() { $BR state "$1" 2>/dev/null | tr -d ' \n' | sed -n 's/.*"pid":\([0-9]*\).*/\1/p'; }

# create + start a container whose output goes to /tmp/<id>.out
launch() {
    if ! $BR create --bundle "/lane/bundles/$1" "$1" >"/tmp/$1.out" 2>&1; then
        err "create failed: $(tr '\n' ' ' <"/tmp/$1.out")"
        return 1
    fi
}

finish() {
    $BR kill "$1" KILL >/dev/null 2>&1
    $BR delete --force "$1" >/dev/null 2>&1 || err "delete --force $1 failed"
    [ -e "$CG/$1" ] && err "$CG/$1 left after delete"
}

echo "V2LANE-INFO boxrun $($BR --version 2>&1 | head -1)"

# --- limits from the config, read back; update; join; delete removes them
id=limits
if launch $id; then
    pid=$(pid_of $id)
    echo "V2LANE-INFO limits case: $(cd $CG/$id && for f in memory.max memory.swap.max memory.low cpu.weight cpu.max pids.max; do printf '%s=%s ' $f "$(cat $f)"; done)"
    want $CG/$id/memory.max 67108864
    want $CG/$id/memory.swap.max 67108864
    want $CG/$id/memory.low 33554432
    want $CG/$id/cpu.weight 20
    want $CG/$id/cpu.max "50000 100000"
    want $CG/$id/pids.max 32
    [ -n "$pid" ] || err "no pid in state"
    want $CG/$id/cgroup.procs "$pid"
    want "/proc/$pid/cgroup" "0::/boxrun/$id"
    # the device program is attached (its effect: see the devices case)
    $BR update --pids-limit 64 --memory 134217728 --cpu-quota 20000 $id >/tmp/upd.out 2>&1 ||
        err "update failed: $(tr '\n' ' ' </tmp/upd.out)"
    want $CG/$id/pids.max 64
    want $CG/$id/memory.max 134217728
    want $CG/$id/cpu.max "20000 100000"
    $BR start $id >/tmp/start.out 2>&1 || err "start failed: $(tr '\n' ' ' </tmp/start.out)"
fi
finish $id
report boxrun_limits_read_back_and_update

# --- a process over memory.max is OOM-killed (dd's 64 MiB buffer, 32 MiB limit)
id=oom
if launch $id; then
    $BR start $id >/dev/null 2>&1 || err "start failed"
    if wait_for /tmp/$id.out '^dd_exit=' 120; then
        grep -q '^dd_exit=137$' /tmp/$id.out || err "dd not SIGKILLed: $(tr '\n' ' ' </tmp/$id.out)"
        echo "V2LANE-INFO oom case: $(grep dd_exit /tmp/$id.out), memory.events: $(tr '\n' ' ' <$CG/$id/memory.events), memory.peak $(cat $CG/$id/memory.peak 2>&1)"
        ok=$(sed -n 's/^oom_kill //p' $CG/$id/memory.events)
        [ "${ok:-0}" -ge 1 ] || err "memory.events oom_kill is '${ok}'"
        peak=$(cat $CG/$id/memory.peak 2>/dev/null || echo 0)
        [ "$peak" -le 33554432 ] || err "memory.peak $peak above the limit"
    else
        err "no dd_exit line: $(tr '\n' ' ' </tmp/$id.out)"
    fi
fi
finish $id
report boxrun_oom_kill_at_memory_max

# --- an unbounded fork loop stops at pids.max
id=forkbomb
if launch $id; then
    $BR start $id >/dev/null 2>&1 || err "start failed"
    if wait_for /tmp/$id.out '^bomb_stopped' 120; then
        grep -q bomb_unbounded /tmp/$id.out && err "fork loop not stopped: $(tr '\n' ' ' </tmp/$id.out)"
        echo "V2LANE-INFO forkbomb case: $(grep bomb_ /tmp/$id.out), pids.current $(cat $CG/$id/pids.current), pids.events: $(cat $CG/$id/pids.events)"
        cur=$(cat $CG/$id/pids.current)
        [ "$cur" -le 16 ] || err "pids.current $cur above pids.max 16"
        [ "$cur" -ge 10 ] || err "pids.current $cur: the loop forked too little"
        mx=$(sed -n 's/^max //p' $CG/$id/pids.events)
        [ "${mx:-0}" -ge 1 ] || err "pids.events max is '$mx'"
    else
        err "no bomb_stopped line: $(tr '\n' ' ' </tmp/$id.out)"
    fi
fi
finish $id
report boxrun_fork_bomb_stops_at_pids_max

# --- a busy loop under cpu.max 20% is throttled
id=cpu
if launch $id; then
    $BR start $id >/dev/null 2>&1 || err "start failed"
    if wait_for /tmp/$id.out '^spin_done' 120; then
        echo "V2LANE-INFO cpu case: $(tr '\n' ' ' <$CG/$id/cpu.stat)"
        thr=$(sed -n 's/^nr_throttled //p' $CG/$id/cpu.stat)
        [ "${thr:-0}" -ge 5 ] || err "cpu.stat nr_throttled is '$thr'"
        use=$(sed -n 's/^usage_usec //p' $CG/$id/cpu.stat)
        # at most the 20 ms quota in each 100 ms period that had work (plus
        # slack for the accounting granularity)
        per=$(sed -n 's/^nr_periods //p' $CG/$id/cpu.stat)
        [ "${use:-0}" -le $((${per:-0} * 20000 + 100000)) ] ||
            err "usage_usec $use over $per periods: not throttled to 20%"
        [ "${use:-0}" -ge 200000 ] || err "usage_usec $use: the loop did not run"
    else
        err "no spin_done line: $(tr '\n' ' ' </tmp/$id.out)"
    fi
fi
finish $id
report boxrun_cpu_max_throttles

# --- the eBPF device program: a node of the virtio disk in the rootfs is
# denied unless a rule allows it; /dev/zero (runc default rules) stays allowed
devnum=$(cat /sys/block/vda/dev 2>/dev/null)
if [ -n "$devnum" ]; then
    mknod /lane/rootfs/devnode b "${devnum%:*}" "${devnum#*:}"
    sed -i "s/999999/${devnum%:*}/; s/999998/${devnum#*:}/" /lane/bundles/devallow/config.json
else
    err "no /sys/block/vda: the device cases need the virtio disk"
fi
id=devdeny
out=$($BR run --bundle /lane/bundles/$id $id 2>&1)
echo "V2LANE-INFO devdeny case (b $devnum): $(echo "$out" | tr '\n' ' ')"
echo "$out" | grep -q '^node_denied' || err "b $devnum not denied: $(echo "$out" | tr '\n' ' ')"
echo "$out" | grep -q 'Operation not permitted' || err "no EPERM: $(echo "$out" | tr '\n' ' ')"
echo "$out" | grep -q '^zero_ok' || err "/dev/zero not readable: $(echo "$out" | tr '\n' ' ')"
$BR delete --force $id >/dev/null 2>&1
[ -e "$CG/$id" ] && err "$CG/$id left after run"
report boxrun_device_program_denies_unlisted_device

id=devallow
out=$($BR run --bundle /lane/bundles/$id $id 2>&1)
echo "V2LANE-INFO devallow case (b $devnum r): $(echo "$out" | tr '\n' ' ')"
echo "$out" | grep -q '^node_ok' || err "allowed b $devnum not opened: $(echo "$out" | tr '\n' ' ')"
echo "$out" | grep -q '^write_denied' || err "write to r-only b $devnum not denied: $(echo "$out" | tr '\n' ' ')"
$BR delete --force $id >/dev/null 2>&1
report boxrun_device_program_allows_listed_device

# --- with a cgroup namespace the container sees its own cgroup as the root,
# read-only, with its limits
id=cgns
out=$($BR run --bundle /lane/bundles/$id $id 2>&1)
echo "V2LANE-INFO cgns case: $(echo "$out" | tr '\n' ' ')"
echo "$out" | grep -q '^0::/$' || err "/proc/self/cgroup not 0::/ : $(echo "$out" | tr '\n' ' ')"
echo "$out" | grep -q '^pids=7$' || err "pids.max not 7 in the container: $(echo "$out" | tr '\n' ' ')"
echo "$out" | grep -q '^ro_ok' || err "cgroup mount writable: $(echo "$out" | tr '\n' ' ')"
$BR delete --force $id >/dev/null 2>&1
report boxrun_cgroup_namespace_view

# --- rootless (uid 65534, a `spec --rootless` bundle): from a delegated subtree (the
# directory, its cgroup.procs, cgroup.threads and cgroup.subtree_control given to the
# user, the caller in a leaf below) the container's cgroup is made next to the caller's
# (runc's rule) with its limit; from a cgroup not delegated, the limit is refused by its
# field and a container without limits runs without a cgroup of its own
RL=$CG-rootless
RLBR="/lane/setpriv --reuid=65534 --regid=65534 --clear-groups /lane/boxrun --root /tmp/rl-root"
mkdir -p /tmp/rl-root $RL/caller && chown 65534:65534 /tmp/rl-root
echo "+pids +memory" >/sys/fs/cgroup/cgroup.subtree_control
chown 65534:65534 $RL $RL/cgroup.procs $RL/cgroup.threads $RL/cgroup.subtree_control \
    $RL/caller $RL/caller/cgroup.procs
# rl ARGS...: boxrun as the user, from the delegated leaf
rl() { sh -c 'echo $$ >'"$RL"'/caller/cgroup.procs && exec "$@"' rl $RLBR "$@"; }
id=rl1
if rl create --bundle /lane/bundles/rootless $id >/tmp/$id.out 2>&1; then
    pid=$(rl state $id 2>/dev/null | tr -d ' \n' | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
    [ -n "$pid" ] || err "no pid in state"
    want $RL/$id/pids.max 9
    want $RL/$id/cgroup.procs "$pid"
    want "/proc/$pid/cgroup" "0::/boxrun-rootless/$id"
    [ "$(stat -c %u "/proc/$pid")" = 65534 ] || err "init not uid 65534 on the host"
    rl start $id >/dev/null 2>&1 || err "start failed"
    if wait_for /tmp/$id.out '^ready' 30; then
        echo "V2LANE-INFO rootless case: $(tr '\n' ' ' </tmp/$id.out)"
        grep -Eq '^ +0 +65534 +1$' /tmp/$id.out || err "uid_map not 0 65534 1: $(tr '\n' ' ' </tmp/$id.out)"
        out=$(rl exec $id cat /proc/self/cgroup 2>&1)
        [ "$out" = "0::/boxrun-rootless/$id" ] || err "exec not in the container's cgroup: $out"
        out=$(rl ps --format json $id 2>&1)
        echo "$out" | grep -q "$pid" || err "ps does not list the init: $out"
    else
        err "no ready line: $(tr '\n' ' ' </tmp/$id.out)"
    fi
    rl kill $id KILL >/dev/null 2>&1 || err "kill failed"
else
    err "create failed: $(tr '\n' ' ' </tmp/$id.out)"
fi
rl delete --force $id >/dev/null 2>&1 || err "delete --force $id failed"
[ -e "$RL/$id" ] && err "$RL/$id left after delete"
report boxrun_rootless_delegated_subtree_gets_the_limit

out=$($RLBR run --bundle /lane/bundles/rootless rl2 2>&1) && err "limit accepted without a delegated cgroup"
echo "$out" | grep -q 'linux.resources.pids.limit' || err "error does not name the field: $(echo "$out" | tr '\n' ' ')"
out=$($RLBR run --bundle /lane/bundles/rootless-nolimit rl3 2>&1) || err "run without limits failed: $(echo "$out" | tr '\n' ' ')"
echo "V2LANE-INFO rootless without delegation: $(echo "$out" | tr '\n' ' ')"
[ "$out" = "0::/" ] || err "not left in the caller's cgroup: $(echo "$out" | tr '\n' ' ')"
[ -e /sys/fs/cgroup/rl3 ] || [ -e $CG/rl3 ] && err "a cgroup was made for rl3"
rmdir $RL/caller $RL || err "cannot remove $RL"
left=$($RLBR list -q 2>/dev/null | tr '\n' ' ')
[ -z "$left" ] || err "rootless containers left: $left"
rm -rf /tmp/rl-root
report boxrun_rootless_without_delegation_refuses_limits_runs_without
# --- checkpoint/restore with criu: a counter loop (/dev/shm/count, once a second)
# counter PID: the container's counter, read through its root
counter() { cat "/proc/$1/root/dev/shm/count" 2>/dev/null || echo 0; }
# wait_count PID N SECONDS: bounded poll until the counter reaches N
wait_count() {
    n=0
    while [ "$(counter "$1")" -lt "$2" ]; do
        [ $n -ge $(($3 * 10)) ] && return 1
        sleep 0.1
        n=$((n + 1))
    done
}
# dumped IMAGES: the counter in the checkpoint (criu keeps a tmpfs as a tar archive)
dumped() {
    for t in "$1"/tmpfs-dev-*.tar.gz.img; do
        tar -xzOf "$t" ./count 2>/dev/null
    done | head -1
}
# restored ID OLDPID BEFORE: the container runs again with a new pid, in its cgroup,
# and its counter goes on from BEFORE, the value in the images (not from 1)
restored() {
    st=$($BR state "$1" 2>&1 | tr -d ' \n')
    echo "$st" | grep -q '"status":"running"' || err "not running after restore: $st"
    new=$(pid_of "$1")
    [ -n "$new" ] && [ "$new" != "$2" ] || err "restored pid '$new' (before: $2)"
    [ -n "$new" ] || return
    grep -qx "$new" "$CG/$1/cgroup.procs" 2>/dev/null || err "restored pid $new not in $CG/$1"
    got=$(counter "$new")
    [ -n "$3" ] || err "no counter in the images"
    [ "$got" -ge "${3:-1}" ] && [ "$got" -le $((${3:-0} + 2)) ] ||
        err "counter at restore is $got, $3 in the images"
    wait_count "$new" $((got + 2)) 30 || err "counter stuck at $(counter "$new") after restore"
    echo "V2LANE-INFO $1 case: pid $2 -> $new, counter $3 in the images, $got at restore, $(counter "$new") later"
}
# cr_failed WHAT OUT LOG: a failed criu step, with the first errors of criu's log
cr_failed() {
    err "$1 failed: $(tr '\n' ' ' <"$2")"
    grep Error "$3" 2>/dev/null | head -5 | sed 's/^/V2LANE-INFO criu log: /'
}
if command -v criu >/dev/null 2>&1; then
    echo "V2LANE-INFO criu $(criu --version | head -1)"
    criu check 2>&1 | sed "s/^/V2LANE-INFO criu check: /"
    id=cr
    if launch $id && $BR start $id >/dev/null 2>&1; then
        pid=$(pid_of $id)
        wait_count "$pid" 3 60 || err "counter did not reach 3: $(counter "$pid")"
        if $BR checkpoint --image-path /tmp/$id.img --work-path /tmp/$id.work $id >/tmp/cp.out 2>&1; then
            before=$(dumped /tmp/$id.img)
            kill -0 "$pid" 2>/dev/null && err "pid $pid alive after checkpoint"
            $BR state $id >/dev/null 2>&1 && err "$id still has state after checkpoint"
            [ -e "$CG/$id" ] && err "$CG/$id left after checkpoint"
            if $BR restore -d --image-path /tmp/$id.img --work-path /tmp/$id.work \
                --bundle /lane/bundles/$id $id >/tmp/rs.out 2>&1; then
                restored $id "$pid" "$before"
            else
                cr_failed restore /tmp/rs.out /tmp/$id.work/restore.log
            fi
        else
            cr_failed checkpoint /tmp/cp.out /tmp/$id.work/dump.log
        fi
    else
        err "create/start failed: $(tr '\n' ' ' </tmp/$id.out)"
    fi
    finish $id
    report boxrun_checkpoint_restore_counter_continues

    # --leave-running keeps it (same pid, counting); the images restore it after a delete,
    # with the cgroup mount (an external bind) back on the new cgroup
    id=crlr
    if launch $id && $BR start $id >/dev/null 2>&1; then
        pid=$(pid_of $id)
        wait_count "$pid" 2 60 || err "counter did not reach 2"
        if $BR checkpoint --leave-running --image-path /tmp/$id.img $id >/tmp/cp.out 2>&1; then
            before=$(dumped /tmp/$id.img)
            st=$($BR state $id 2>&1 | tr -d ' \n')
            echo "$st" | grep -q '"status":"running"' || err "not running after --leave-running: $st"
            [ "$(pid_of $id)" = "$pid" ] || err "pid changed with --leave-running"
            wait_count "$pid" $((${before:-0} + 1)) 30 || err "counter stopped after --leave-running"
            finish $id
            if $BR restore -d --image-path /tmp/$id.img --bundle /lane/bundles/$id $id >/tmp/rs.out 2>&1; then
                restored $id "$pid" "$before"
                # the cgroup mount is the new cgroup (its cgroup.procs lists the new init)
                new=$(pid_of $id)
                grep -q " /sys/fs/cgroup cgroup2 " "/proc/$new/mounts" 2>/dev/null ||
                    err "no cgroup mount after restore"
                grep -qx "$new" "/proc/$new/root/sys/fs/cgroup/cgroup.procs" 2>/dev/null ||
                    err "the cgroup mount is not the restored container's cgroup"
            else
                cr_failed restore /tmp/rs.out /tmp/$id.img/restore.log
            fi
        else
            cr_failed "checkpoint --leave-running" /tmp/cp.out /tmp/$id.img/dump.log
        fi
    else
        err "create/start failed: $(tr '\n' ' ' </tmp/$id.out)"
    fi
    finish $id
    report boxrun_checkpoint_leave_running_then_restore

    # --pre-dump leaves it running; a dump with --parent-path on top of it restores
    id=crpre
    if $BR create --bundle /lane/bundles/cr $id >/tmp/$id.out 2>&1 && $BR start $id >/dev/null 2>&1; then
        pid=$(pid_of $id)
        wait_count "$pid" 2 60 || err "counter did not reach 2"
        if $BR checkpoint --pre-dump --image-path /tmp/$id.pre $id >/tmp/cp.out 2>&1; then
            [ "$(pid_of $id)" = "$pid" ] && kill -0 "$pid" 2>/dev/null || err "not running after --pre-dump"
            if $BR checkpoint --parent-path ../$id.pre --image-path /tmp/$id.img $id >/tmp/cp.out 2>&1; then
                before=$(dumped /tmp/$id.img)
                [ -L /tmp/$id.img/parent ] || err "no parent link in the images"
                if $BR restore -d --image-path /tmp/$id.img --bundle /lane/bundles/cr $id >/tmp/rs.out 2>&1; then
                    restored $id "$pid" "$before"
                else
                    cr_failed restore /tmp/rs.out /tmp/$id.img/restore.log
                fi
            else
                cr_failed "checkpoint --parent-path" /tmp/cp.out /tmp/$id.img/dump.log
            fi
        else
            cr_failed "checkpoint --pre-dump" /tmp/cp.out /tmp/$id.pre/pre-dump.log
        fi
    else
        err "create/start failed: $(tr '\n' ' ' </tmp/$id.out)"
    fi
    finish $id
    report boxrun_checkpoint_pre_dump_then_dump_with_parent
else
    echo "V2LANE-CASE boxrun_checkpoint_restore_counter_continues FAILED: no criu in the VM (apt-get install criu)"
fi

# nothing left in the state root
left=$($BR list -q 2>/dev/null | tr '\n' ' ')
[ -z "$left" ] || err "containers left: $left"
report boxrun_state_root_empty
