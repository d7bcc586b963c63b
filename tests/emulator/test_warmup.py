"""The emulator's kernel warm-up that servers run before accepting connections."""

import numba

from xbarlab.emulator import kernels, pcm_kernels
from xbarlab.emulator.warmup import warm_up


def test_warm_up_compiles_every_kernel_a_server_reaches():
    warm_up()
    compiled = [
        kernels.dac_kernel,
        kernels.dac_kernel_parallel,
        kernels.adc_kernel,
        kernels.adc_kernel_parallel,
        *(
            getattr(pcm_kernels, name)
            for name in dir(pcm_kernels)
            if isinstance(getattr(pcm_kernels, name), numba.core.registry.CPUDispatcher)
            and name.endswith("kernel")
        ),
    ]
    assert len(compiled) >= 6
    missing = [k.py_func.__name__ for k in compiled if not k.signatures]
    assert not missing, f"not compiled by warm_up: {missing}"


def test_read_only_inputs_reuse_the_compiled_kernels():
    """Bytes from a socket arrive as read-only arrays; they must not start a compilation."""
    import numpy as np

    from xbarlab.emulator.pcm import PCMArray

    warm_up()
    counts = {k: len(k.signatures) for k in (kernels.dac_kernel, kernels.adc_kernel)}
    chip = PCMArray(4, 4, seed=1)
    x = np.frombuffer(np.full(8, 0.05, np.float32).tobytes(), np.float32).reshape(2, 4)
    assert not x.flags.writeable
    chip.mvm(x)
    chip.pulse(
        np.frombuffer(np.arange(3).astype(np.intp).tobytes(), np.intp), np.ones(1), np.full(1, 5e-8)
    )
    assert {k: len(k.signatures) for k in counts} == counts
