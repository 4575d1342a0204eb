#!/bin/sh
# Stage 2 (PID 1 on the tmpfs root): a pure cgroup v2 system. Mounts
# cgroup2 alone at /sys/fs/cgroup, runs the cgroups crate's test binaries and
# the boxrun cases, prints everything on the serial console with V2LANE
# markers (parsed by run.sh) and powers off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root RUST_BACKTRACE=1 TMPDIR=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t cgroup2 none /sys/fs/cgroup
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
# only emergencies on the console: OOM kills must not cut into test lines
# (unless run.sh was asked for a verbose boot)
grep -q 'loglevel=7' /proc/cmdline || echo 1 >/proc/sys/kernel/printk

for m in $(cat /lane/modules/order); do
    [ -f "/lane/modules/$m.ko" ] && insmod "/lane/modules/$m.ko"
done
# loopback up: criu's kernel feature detection connects a TCP socket to itself
ip link set lo up
# the virtio disk gives io.max a real major:minor; wait (bounded) for it
i=0
while [ ! -e /sys/block/vda ] && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
done

echo "V2LANE-INFO kernel $(uname -r), $(nproc) cpus"
echo "V2LANE-INFO cgroup mounts: $(grep cgroup /proc/mounts | tr '\n' ';')"
echo "V2LANE-INFO root controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "V2LANE-INFO block devices: $(ls /sys/block | tr '\n' ' ')"

for t in /lane/tests/*; do
    name=${t##*/}
    echo "V2LANE-SUITE-BEGIN $name"
    "$t" --test-threads=2 2>&1
    echo "V2LANE-SUITE-END $name rc=$?"
done

if [ -x /lane/boxrun ]; then
    sh /lane/boxrun-cases.sh 2>&1
else
    echo "V2LANE-CASE boxrun_cases FAILED: no boxrun binary (did cargo build -p boxrun fail?)"
fi

# nothing of a test may be left behind in the cgroup tree; the shared parent
# /sys/fs/cgroup/boxrun stays between containers (as runc's and crun's do), empty
left=$(find /sys/fs/cgroup -mindepth 1 -type d | grep -E 'boxrun' | grep -vx /sys/fs/cgroup/boxrun | tr '\n' ' ')
if [ -z "$left" ]; then
    echo "V2LANE-CASE cleanup_no_cgroups_left ok"
else
    echo "V2LANE-CASE cleanup_no_cgroups_left FAILED: left behind: $left"
fi
echo "V2LANE-DONE"
sync
poweroff -f
