#!/bin/bash
# throwaway: compile driver + knob variants, time pinned to 2 cores
set -u; cd "$(dirname "$0")"; R=/work/main; R=$(cd ../../..; pwd)
g++ -O2 -I$R/kernels/include driver.cc -o driver -ldl || exit 1
lscpu | grep "Model name"
run() { prob=$1; shift; K="$1"; so=/tmp/k_$RANDOM.so
  g++ -O3 -march=native -shared -fPIC -I$R/kernels/include $(for x in $K; do echo -D$x; done) $R/tasks/cpu/$prob/baseline/kernel.cc -o $so || { echo FAIL; return; }
  echo "[$prob: ${K:-defaults}]"; taskset -c 0,1 ./driver $so $prob 21 $DIMS | grep -E "TOTAL|BAD"; }
DIMS="128 128 128 256 256 256 96 384 192"
for k in "" "THREADS=2" "BLOCK_N=64 BLOCK_K=64" "UNROLL=4" "LOOP_ORDER=1" "VEC=16" "LOOP_ORDER=1 VEC=8" "LOOP_ORDER=1 VEC=16" "LOOP_ORDER=1 VEC=16 UNROLL=4" "LOOP_ORDER=1 VEC=16 UNROLL=4 BLOCK_N=128 BLOCK_K=64" "LOOP_ORDER=1 VEC=16 UNROLL=4 BLOCK_N=128 BLOCK_K=64 THREADS=2" "VEC=16 UNROLL=2" "VEC=16 UNROLL=4" "VEC=8 UNROLL=8" "VEC=16 UNROLL=8" "VEC=16 UNROLL=4 THREADS=2" "VEC=16 UNROLL=4 BLOCK_K=128 THREADS=2" "VEC=16 UNROLL=4 BLOCK_N=128 BLOCK_K=128 THREADS=2"; do run matmul "$k"; done
DIMS="64 1024 128 4096 256 2048 32 8192"
for k in "" "THREADS=2" "FUSE=1" "UNROLL=4" "VEC=8" "VEC=16" "VEC=8 UNROLL=4" "VEC=16 UNROLL=4" "VEC=16 UNROLL=4 FUSE=1" "VEC=16 UNROLL=4 FUSE=1 THREADS=2" "VEC=8 UNROLL=8 FUSE=1 THREADS=2"; do run rmsnorm "$k"; done
