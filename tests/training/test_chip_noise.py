"""The HWA noise measured on a chip: grows with time after programming and with read noise."""

import pytest

from xbarlab.errors import ConfigError
from xbarlab.training.chip_noise import measure_weight_noise

SPEC = "emulator:pcm?differential=1&seed=3"


def test_noise_grows_with_time_and_read_noise():
    early = measure_weight_noise(SPEC, shape=(16, 32), t=25.0)
    late = measure_weight_noise(SPEC, shape=(16, 32), t=86400.0)
    noisy = measure_weight_noise(SPEC + "&q_s_coeff=0.03", shape=(16, 32), t=25.0)
    assert 0.005 < early < late < 0.2
    assert noisy > 1.5 * early


@pytest.mark.parametrize(
    ("kwargs", "words"), [({"t": 0.0}, "t must be > 0"), ({"n_vectors": 0}, "n_vectors")]
)
def test_bad_settings_are_refused(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        measure_weight_noise(SPEC, **kwargs)
