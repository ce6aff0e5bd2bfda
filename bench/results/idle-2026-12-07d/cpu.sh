#!/bin/bash
# (bench/results: the script that measured bridge-cpu.md, kept as it ran; paths are of the session that ran it.)
# usage: cpu.sh BRIDGE OUTPREFIX [perf]  -- runs one flat-out 256 B lossy bridge rep, samples CPU of each process
BR=$1; OUT=$2; MODE=${3:-}
B=/work/wt/bthru/build-rel/bench/shmbus-bench
$B bridge --bridge $BR --size 256 --mode lossy --rate ${RATE:-0} --reps 1 --duration ${DUR:-6} > $OUT.report 2> $OUT.err &
BP=$!
desc() { # all descendants of $1
  local p=$1; for c in $(cat /proc/$p/task/*/children 2>/dev/null); do echo $c; desc $c; done; }
# wait for both bridges
for i in $(seq 1 600); do
  n=0; for p in $(desc $BP); do [[ "$(cat /proc/$p/comm 2>/dev/null)" == shmbus-bridge* ]] && n=$((n+1)); done
  [ $n -ge 2 ] && break; sleep 0.05
done
sleep 1.5
PIDS="$BP $(desc $BP)"
snap() { for p in $PIDS; do
  if [ -r /proc/$p/stat ]; then
    a=$(sed 's/.*) //' /proc/$p/stat | awk '{print $12+$13}')
    cs=$(awk '/ctxt_switches/{s+=$2} END{print s}' /proc/$p/status)
    echo "$p $(cat /proc/$p/comm) $a $cs $(tr '\0' ' ' < /proc/$p/cmdline | grep -o -- "--export\|--import\|nats-server\|fanout-sub\|-c [^ ]*" | head -1)"; fi; done; }
snap > $OUT.s0; T0=$(date +%s.%N)
if [ "$MODE" = perfexp ]; then EP=$(grep -- "--export" $OUT.s0 | cut -d" " -f1); perf record --call-graph dwarf,16384 -F 499 -p $EP -o $OUT.perf.data -- sleep 2 2>/dev/null >/dev/null;
elif [ "$MODE" = perfimp ]; then EP=$(grep -- "--import" $OUT.s0 | cut -d" " -f1); perf record --call-graph dwarf,16384 -F 499 -p $EP -o $OUT.perf.data -- sleep 2 2>/dev/null >/dev/null;
elif [ "$MODE" = perf ]; then perf record -a -g -F 999 -o $OUT.perf.data -- sleep 2 2>/dev/null >/dev/null; else sleep 2; fi
snap > $OUT.s1; T1=$(date +%s.%N)
wait $BP; echo "bench rc=$?" >> $OUT.err
python3 - $OUT $T0 $T1 <<'PY'
import sys
out,t0,t1=sys.argv[1],float(sys.argv[2]),float(sys.argv[3])
hz=100
def rd(f):
    d={}
    for l in open(f):
        p=l.split(None,4); d[p[0]]=(p[1],int(p[2]),int(p[3]),p[4].strip() if len(p)>4 else "")
    return d
a,b=rd(out+".s0"),rd(out+".s1")
dt=t1-t0
for k in a:
    if k in b:
        c=(b[k][1]-a[k][1])/hz/dt*100
        cs=(b[k][2]-a[k][2])/dt
        if c>0.5 or cs>100: print(f"{k:8} {a[k][0]:14} cpu%={c:6.1f} csw/s={cs:9.0f}  {a[k][3][:70]}")
print(f"window {dt:.2f}s")
PY
