"""The MVM benchmark's timing rounds: each timed call follows a call of its own kind."""

from xbarlab.chipdrivers.mvm_bench import interleaved_ms


def test_calls_run_in_blocks_of_their_own_kind_after_warm_up():
    log: list[str] = []
    calls = {name: (lambda name=name: log.append(name)) for name in ("base", "tile")}
    times = interleaved_ms(calls, repeats=7, block=4)
    assert set(times) == {"base", "tile"} and all(t >= 0 for t in times.values())
    assert log[:4] == ["base", "base", "tile", "tile"]  # two warm-up calls each
    # 7 timed calls need 3 rounds of blocks that keep 3 of 4 calls
    assert log[4:] == (["base"] * 4 + ["tile"] * 4) * 3
