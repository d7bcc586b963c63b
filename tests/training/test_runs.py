"""run_training's hooks for callers that drive it (the GUI): run id first, stop between epochs."""

import pytest

from xbarlab.store import RunStore
from xbarlab.training.runs import TrainingStopped, epoch_step_id, run_training


def test_stop_after_an_epoch_leaves_an_aborted_run_with_the_epochs_done(tmp_path):
    started, seen = [], []

    def on_epoch(stats):
        seen.append(stats["epoch"])
        if len(seen) == 2:
            raise TrainingStopped("stopped from the GUI")

    with RunStore(tmp_path / "runs.sqlite") as store:
        with pytest.raises(TrainingStopped):
            run_training(
                "fp", epochs=5, hidden=4, store=store, on_start=started.append, on_epoch=on_epoch
            )
        (run,) = store.runs()
        assert started == [run.run_id] and run.summary == {"epochs_done": 2}
        assert run.procedure == "train-fp" and run.status == "aborted"
        assert seen == [1, 2]
        assert store.step_ids(run.run_id) == [epoch_step_id(1), epoch_step_id(2)]
        assert store.record(run.run_id, "epoch-0002")["epoch"] == 2


def test_on_start_gets_none_without_a_store():
    started = []
    out = run_training("fp", epochs=1, hidden=4, on_start=started.append)
    assert started == [None] and out["run_id"] is None and len(out["history"]) == 1
