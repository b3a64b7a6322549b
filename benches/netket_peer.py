"""NetKet peer benchmark for rbm-vmc: samples/s of energy + gradient estimation.

Measures the throughput of NetKet (JAX, float64, CPU) on rbm-vmc's default system
and wave function, for comparison with

    rbm-vmc sample --engine cpu --set sampler.kind=metropolis --set sampler.measure_every=4 ...

System: 2 distinguishable particles in 2D, harmonic trap (omega = 1) plus Coulomb 1/r12.
Wave function: Gaussian-binary RBM, 2 hidden units, sigma = 1 (14 parameters):
    ln psi(x) = -sum_k (x_k - a_k)^2 / 2 + sum_j softplus(b_j + sum_k x_k W_kj)
Sampler: MetropolisGaussian (all coordinates moved at once), sweep_size = 4, so
consecutive samples of a chain are 4 Metropolis steps apart (as measure_every = 4).
Timed: vstate.expect_and_grad(H) on fresh samples (sampling + local energies +
gradient), after one warm-up call that compiles; median over --repeats.
samples/s = n_samples / median time. Chains continue between repeats (no burn-in).
By default JAX has one CPU device (XLA uses the other cores only inside some ops);
--devices 2 splits the host into 2 XLA devices and NetKet shards the chains over them.

Install (in a venv):  pip install netket==3.23.0   (brings jax/jaxlib 0.10.2 CPU)
Run:  python benches/netket_peer.py --chains 1024 --samples 2097152 --repeats 5 [--devices 2]
"""

import argparse
import os
import statistics
import time

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--chains", type=int, default=1024)
p.add_argument("--samples", type=int, default=2**21, help="rounded up to a multiple of --chains")
p.add_argument("--repeats", type=int, default=5)
p.add_argument("--sigma", type=float, default=0.3, help="Gaussian proposal width")
p.add_argument("--devices", type=int, default=1, help="XLA host devices (sharded chains)")
p.add_argument("--seed", type=int, default=2023)
args = p.parse_args()
if args.devices > 1:  # must be set before JAX starts
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import flax.linen as nn  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import netket as nk  # noqa: E402


class RBM(nn.Module):
    """Gaussian-binary RBM, returns ln psi (sampled density |psi|^2)."""

    n_hidden: int = 2
    sigma: float = 1.0

    @nn.compact
    def __call__(self, x):
        m = x.shape[-1]
        init = nn.initializers.normal(0.001)
        a = self.param("a", init, (m,), jnp.float64)
        b = self.param("b", init, (self.n_hidden,), jnp.float64)
        w = self.param("W", init, (m, self.n_hidden), jnp.float64)
        s2 = self.sigma**2
        q = b + x @ w / s2
        return -jnp.sum((x - a) ** 2, axis=-1) / (2 * s2) + jnp.sum(
            jax.nn.softplus(q), axis=-1
        )


def potential(x):
    """Trap (omega = 1) plus Coulomb repulsion, x = (x1, y1, x2, y2)."""
    r12 = jnp.linalg.norm(x[:2] - x[2:])
    return 0.5 * jnp.sum(x**2) + 1.0 / r12


def main():
    hi = nk.experimental.hilbert.Particle(N=2, geometry=nk.experimental.geometry.FreeSpace(d=2))
    ham = nk.operator.KineticEnergy(hi, mass=1.0) + nk.operator.PotentialEnergy(hi, potential)
    sampler = nk.sampler.MetropolisGaussian(
        hi, sigma=args.sigma, n_chains=args.chains, sweep_size=4
    )
    vs = nk.vqs.MCState(
        sampler, RBM(), n_samples=args.samples, n_discard_per_chain=0, seed=args.seed,
        sampler_seed=args.seed + 1,
    )

    def run():
        vs.reset()  # drop cached samples: each call samples afresh
        t0 = time.perf_counter()
        e, g = vs.expect_and_grad(ham)
        jax.block_until_ready((e, g))
        return time.perf_counter() - t0, e

    run()  # warm-up: JIT compilation, and moves the chains off their start
    times, e = [], None
    for _ in range(args.repeats):
        t, e = run()
        times.append(t)
    med = statistics.median(times)
    n = vs.n_samples
    print(
        f"netket {nk.__version__} jax {jax.__version__} devices {jax.devices()} "
        f"cpus {os.cpu_count()}\n"
        f"chains {args.chains} samples {n} sweep_size 4 sigma {args.sigma} "
        f"acceptance {float(vs.sampler_state.acceptance):.3f} energy {e}\n"
        f"times {' '.join(f'{t:.3f}' for t in times)} s\n"
        f"median {med:.3f} s  samples/s {n / med:.4g}"
    )


if __name__ == "__main__":
    main()
