#!/usr/bin/env bash
# One round of GPU figures for BENCHMARKS.md, in one go on a machine with a GPU: the adapters,
# VMC ladders of the GPU against the all-core CPU lanes for 2, 6, 12 and 20 electrons
# (importance sampling, a measurement every 4 steps for the fermions, E_L and every gradient
# sum each step for two electrons), the Slater determinants' orbital loops in the variant the
# run does not take by default (`gpu.unroll_orbitals`: looped for 6 and 12 electrons, unrolled
# for 20), Philox's multiplies in 16-bit pieces against the native instruction
# (`gpu.native_multiply`, same run), the parameters in a uniform buffer and the O sums over the
# workgroup against the defaults (`gpu.uniform_params`, `gpu.workgroup_sums`), the cost of a
# DMC generation against a VMC step on the GPU
# (the difference of two runs, so that start-up and shader compiling drop out), and the full
# `validate` on the GPU. Everything lands in OUT; the console log is OUT/round.log.
#
#   benches/gpu-round.sh [BINARY] [OUT]
#
# The ladders' walker counts can be narrowed for a short round or a CPU adapter (lavapipe):
# WALKERS_2E, WALKERS_FERMIONS, WALKERS_VARIANTS (bench --walkers lists), BENCH_SECONDS,
# DMC_WALKERS_2E, DMC_WALKERS_FERMIONS, DMC_STEPS ("S1 S2"), SKIP_VALIDATE=1.
set -euo pipefail
shopt -s inherit_errexit

bin=${1:-target/release/rbm-vmc}
out=${2:-runs/gpu-round}
walkers_2e=${WALKERS_2E:-4096..4194304}
walkers_fermions=${WALKERS_FERMIONS:-4096..1048576}
walkers_variants=${WALKERS_VARIANTS:-262144,1048576,4194304}
seconds=${BENCH_SECONDS:-2}
dmc_walkers_2e=${DMC_WALKERS_2E:-1048576}
dmc_walkers_fermions=${DMC_WALKERS_FERMIONS:-65536}
# S2 a multiple of S1 (the DMC block).
read -r s1 s2 <<< "${DMC_STEPS:-100 400}"
configs=$(dirname "$0")/../configs

mkdir -p "$out"
exec > >(tee "$out/round.log") 2>&1
"$bin" devices

echo "== VMC: GPU against the all-core CPU lanes"
"$bin" bench --engines cpu,gpu --walkers "$walkers_2e" --seconds "$seconds" \
  --set sampler.kind=importance --out "$out/bench-2e" --force
for n in 6 12 20; do
  "$bin" bench "$configs/fermions-$n.json" --engines cpu,gpu --walkers "$walkers_fermions" \
    --seconds "$seconds" --set sampler.measure_every=4 --out "$out/bench-${n}e" --force
done

echo "== Slater orbital loops: the variant that is not the default, GPU only"
for n in 6 12 20; do
  unroll=false
  [ "$n" -gt 12 ] && unroll=true
  "$bin" bench "$configs/fermions-$n.json" --engines gpu --walkers "$walkers_fermions" \
    --seconds "$seconds" --set sampler.measure_every=4 --set "gpu.unroll_orbitals=$unroll" \
    --out "$out/bench-${n}e-unroll-$unroll" --force
done

# Two-electron Metropolis ladders (E_L and every gradient sum each step: the 5e10 target's
# workload) with the GPU setting $1 on and off, alternating, then 6 and 20 electrons with it at
# $2 (the value the default does not take). A variant the adapter refuses (the native multiply
# off Vulkan) leaves the round going.
variant_ladders() {
  local key=$1 other=$2 value n
  for value in true false true false; do
    "$bin" bench --engines gpu --walkers "$walkers_variants" --seconds "$seconds" \
      --set sampler.kind=metropolis --set "gpu.$key=$value" \
      --out "$out/bench-2e-metropolis-$key-$value" --force || echo "gpu.$key=$value failed"
  done
  for n in 6 20; do
    "$bin" bench "$configs/fermions-$n.json" --engines gpu --walkers 65536 --seconds "$seconds" \
      --set sampler.measure_every=4 --set "gpu.$key=$other" --out "$out/bench-${n}e-$key-$other" \
      --force || echo "gpu.$key=$other failed"
  done
}
echo "== Philox's multiplies: native against 16-bit pieces, GPU only"
variant_ladders native_multiply false
echo "== Parameters in a uniform buffer against the default (storage, copied to registers)"
variant_ladders uniform_params true
echo "== O sums over the workgroup against per-walker sums (the default)"
variant_ladders workgroup_sums true

# Seconds of the command (wall).
seconds_of() {
  local start end
  start=$(date +%s.%N)
  "$@" > /dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

echo "== DMC generation against VMC step on the GPU (seconds of $s2 - $s1 of each)"
common=(--engine gpu -q --set wavefunction.jastrow=pade --set sampler.thermalisation=0
  --set observables.enabled=false --out "$out/scratch" --force)
for system in "2e:$dmc_walkers_2e:" \
  "6e:$dmc_walkers_fermions:--set system.particles=6 --set system.statistics=fermions" \
  "20e:$dmc_walkers_fermions:--set system.particles=20 --set system.statistics=fermions"; do
  IFS=: read -r name walkers extra <<< "$system"
  # shellcheck disable=SC2206
  set_system=(--set "walkers=$walkers" $extra)
  vmc() { seconds_of "$bin" sample "${common[@]}" "${set_system[@]}" --set "production.steps=$1"; }
  dmc() {
    seconds_of "$bin" dmc "${common[@]}" "${set_system[@]}" --set "dmc.generations=$1" \
      --set dmc.equilibration=0 --set "dmc.block=$s1"
  }
  v2=$(vmc "$s2")
  v1=$(vmc "$s1")
  d2=$(dmc "$s2")
  d1=$(dmc "$s1")
  v=$(echo "$v2 - $v1" | bc)
  d=$(echo "$d2 - $d1" | bc)
  echo "$name, $walkers walkers: VMC $v s, DMC $d s for $((s2 - s1)) steps;" \
    "DMC / VMC $(echo "scale=2; $d / $v" | bc);" \
    "DMC $(echo "scale=3; $walkers * ($s2 - $s1) / $d" | bc) walker-generations/s"
done
rm -rf "$out/scratch"

if [ "${SKIP_VALIDATE:-0}" != 1 ]; then
  echo "== validate on the GPU"
  start=$(date +%s.%N)
  "$bin" validate --engine gpu --out "$out/validate" --force || true
  echo "validate --engine gpu: $(echo "$(date +%s.%N) - $start" | bc) s"
fi
