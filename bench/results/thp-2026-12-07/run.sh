#!/bin/bash
# A/B: shmem transparent huge pages never vs within_size, same binary.
B=/work/wt/int24/build-rel/bench/shmbus-bench
K=/sys/kernel/mm/transparent_hugepage/shmem_enabled
O=/work/notes/s24/thp
orig=$(sed 's/.*\[\(.*\)\].*/\1/' $K)
for mode in never within_size within_size never; do
  flock -x /work/notes/s24/quiet.lock bash -c "
    echo $mode > $K
    echo \"== $mode \$(date -u +%H:%M:%S) \$(cut -d' ' -f1-3 /proc/loadavg)\"
    ( sleep 8; grep ShmemHugePages /proc/meminfo ) &
    $B fanout --subs 1,2 --size 64k,1M --mode lossy,reliable --wait uv --reps 3 --count 200000
    $B latency --size 1M --wait uv,spin --count 5000 --reps 3 --pin
    echo \"== end \$(date -u +%H:%M:%S) \$(cut -d' ' -f1-3 /proc/loadavg)\"
    echo $orig > $K
  " >> $O/ab.log 2>&1
done
echo "$orig" > $K
echo done >> $O/ab.log
