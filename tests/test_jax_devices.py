"""numpyro's JAX set-up: a host device per chain, the chain method, the compile cache."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from carestar.jax_devices import default_cache_dir, with_device_count

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="numpyro extra not installed")


def test_a_device_per_chain_is_asked_for_and_a_users_own_count_kept():
    flag = "--xla_force_host_platform_device_count"
    assert with_device_count("", 4) == f"{flag}=4"
    assert with_device_count("--xla_cpu_enable_fast_math=false", 3) == f"--xla_cpu_enable_fast_math=false {flag}=3"
    assert with_device_count(f"{flag}=8", 4) == f"{flag}=8"


def test_the_compile_cache_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "carestar" / "jax"


PROBE = """
import json, sys
{before}
from carestar.jax_devices import prepare_jax
method = prepare_jax(chains=4, cores=2)
import jax
print(json.dumps({{"method": method, "devices": jax.local_device_count(),
                   "cache": jax.config.jax_compilation_cache_dir}}))
"""


def probe(tmp_path, before: str = "") -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_COMPILATION_CACHE_DIR")}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", PROBE.format(before=before)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@needs_jax
def test_chains_run_in_parallel_even_when_jax_was_imported_first(tmp_path):
    # ArviZ imports JAX (lazily) long before sampling; the device count must still take
    seen = probe(tmp_path, before="import arviz_stats, jax")
    assert seen == {"method": "parallel", "devices": 4, "cache": str(tmp_path / "carestar" / "jax")}


@needs_jax
def test_chains_run_one_after_another_when_jax_already_started_with_one_device(tmp_path):
    seen = probe(tmp_path, before="import jax.numpy as jnp; jnp.zeros(1).block_until_ready()")
    assert seen["method"] == "sequential" and seen["devices"] == 1
