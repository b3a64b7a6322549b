#!/usr/bin/env bash
# The cost of a DMC generation against a VMC importance-sampling step on the CPU engine, from
# the difference of two runs of S1 and S2 steps (generations), so that start-up and
# thermalisation drop out; each run is the best of 3 (CPU seconds user + system, and wall).
#
#   benches/dmc-cost.sh BINARY THREADS S1 S2 WALKERS [--set KEY=VALUE ...]
#
# e.g. benches/dmc-cost.sh target/release/rbm-vmc 1 1000 9000 2000
set -euo pipefail
binary=$1 threads=$2 s1=$3 s2=$4 walkers=$5
shift 5
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
common=(--engine cpu -q --set "threads=$threads" --set wavefunction.jastrow=pade
  --set sampler.thermalisation=0 --set observables.enabled=false --set "walkers=$walkers" "$@")

# Best of 3 runs of the command: "CPU-seconds wall-seconds".
best() {
  local cpu=1e9 wall=1e9 line
  for _ in 1 2 3; do
    line=$(/usr/bin/time -f "%U %S %e" "$@" 2>&1 >/dev/null | tail -1)
    read -r user sys elapsed <<<"$line"
    cpu=$(python3 -c "print(min($cpu, $user + $sys))")
    wall=$(python3 -c "print(min($wall, $elapsed))")
  done
  echo "$cpu $wall"
}

vmc() { best "$binary" sample "${common[@]}" --set "production.steps=$1" --out "$out/vmc" --force; }
dmc() {
  best "$binary" dmc "${common[@]}" --set "dmc.generations=$1" --set dmc.equilibration=0 \
    --out "$out/dmc" --force
}
read -r vc1 vw1 < <(vmc "$s1")
read -r vc2 vw2 < <(vmc "$s2")
read -r dc1 dw1 < <(dmc "$s1")
read -r dc2 dw2 < <(dmc "$s2")
python3 -c "
v, d, vw, dw = $vc2 - $vc1, $dc2 - $dc1, $vw2 - $vw1, $dw2 - $dw1
print(f'threads $threads, {$s2 - $s1} steps of $walkers walkers: VMC {v:.3f} s, DMC {d:.3f} s CPU '
      f'(ratio {d / v:.2f}); wall VMC {vw:.3f} s, DMC {dw:.3f} s (ratio {dw / vw:.2f})')"
