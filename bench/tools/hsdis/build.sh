#!/usr/bin/env bash
# Builds the PrintAssembly plugin (hsdis) that JMH's perfasm profiler needs to show the hot
# instructions of a benchmark, into bench/target/hsdis. Needs gcc and Capstone's headers
# (Debian/Ubuntu: apt-get install libcapstone-dev). A developer tool only: no build step runs it.
#
# Then, from the repository's root (after the benchmarks jar is built):
#   LD_LIBRARY_PATH=bench/target/hsdis java -Djmh.ignoreLock=true -jar bench/target/benchmarks.jar \
#     PairBenchmark -p peer=segpool -p size=64 -f 1 -wi 3 -i 3 \
#     -prof 'perfasm:events=cpu-clock;tooBigThreshold=20000'
# (events=cpu-clock where perf has no hardware counters, as on most VMs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../../target/hsdis"
case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=aarch64 ;;
  *) echo "hsdis: $(uname -m) is not set up in hsdis.c" >&2; exit 1 ;;
esac
if ! echo '#include <capstone/capstone.h>' | gcc -E -x c - >/dev/null 2>&1; then
  echo "hsdis: Capstone's headers are missing (Debian/Ubuntu: apt-get install libcapstone-dev)" >&2
  exit 1
fi
mkdir -p "$out"
gcc -O2 -Wall -Wextra -shared -fPIC -o "$out/hsdis-$arch.so" "$here/hsdis.c" -lcapstone
echo "built $out/hsdis-$arch.so; run java with LD_LIBRARY_PATH=$(cd "$out" && pwd)"
