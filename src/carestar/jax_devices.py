"""JAX for the numpyro sampler: a device per chain, and its compiled code kept on disk.

- **Devices.** JAX sees one CPU device unless ``XLA_FLAGS`` asks for more *before* JAX
  starts; numpyro then draws its chains one after another. carestar asks for one host
  device per chain (``--xla_force_host_platform_device_count=<chains>``), so the chains run
  in parallel threads (on 2 cores, 4 chains share them). A user's own count in
  ``XLA_FLAGS`` is kept. The flag is read when JAX first starts a backend, so it works
  after ``import jax`` too, but not once something has used JAX in the process.
- **How chains run** (numpyro's ``chain_method``; ``sampler.chain_method=auto`` picks it):
  ``vectorized`` on an accelerator (a GPU or TPU: all chains in one batched program on the
  one device), ``parallel`` where there is a device per chain, otherwise ``sequential``
  (and the log says why: JAX was started, by something else, with fewer devices).
- **Compile cache.** JAX's persistent compilation cache keeps the compiled sampler, so a
  second run of the same model and data does not compile it again. Its folder is
  ``$JAX_COMPILATION_CACHE_DIR`` when set (a parallel sweep's job gets its own:
  ``carestar.job_caches``), else ``<XDG_CACHE_HOME or ~/.cache>/carestar/jax``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

CHAIN_METHODS = ("auto", "parallel", "sequential", "vectorized")
ACCELERATORS = ("gpu", "cuda", "rocm", "tpu")
_DEVICE_COUNT = "--xla_force_host_platform_device_count"


def prepare_jax(chains: int, cores: int, chain_method: str = "auto") -> str:
    """Start JAX with a host device per chain and its compile cache; numpyro's chain method."""
    # read when JAX first starts a backend, not when it is imported (ArviZ imports it lazily)
    os.environ["XLA_FLAGS"] = with_device_count(os.environ.get("XLA_FLAGS", ""), chains)
    import jax

    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(default_cache_dir()))
    if chain_method != "auto":
        return chain_method
    backend = jax.default_backend()
    if backend in ACCELERATORS:
        return "vectorized"
    if cores <= 1 or chains <= 1:
        return "sequential"
    if jax.local_device_count() < chains:
        log.info("numpyro: JAX was started with %d CPU devices for %d chains (XLA_FLAGS=%r); "
                 "the chains run one after another", jax.local_device_count(), chains,
                 os.environ.get("XLA_FLAGS", ""))
        return "sequential"
    return "parallel"


def with_device_count(flags: str, chains: int) -> str:
    """``XLA_FLAGS`` asking for ``chains`` host devices, unless it already names a count."""
    if re.search(rf"{_DEVICE_COUNT}=\d+", flags):
        return flags
    return f"{flags} {_DEVICE_COUNT}={max(chains, 1)}".strip()


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "carestar" / "jax"
