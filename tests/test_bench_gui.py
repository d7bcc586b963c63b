"""bench_gui prints the keys the issue names, with the right types (no timing asserted)."""

import json


def test_small_run_prints_one_json_object_with_the_documented_keys(load_bench, qapp, capsys):
    bench = load_bench("bench_gui")
    result = bench.main(["--sizes", "16,24", "--repeats", "3"])
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))
    # runs on 16 x 16 and 24 x 24 chips can end before the heatmap's first 50 ms repaint:
    # zero frames is a valid measurement there (the frame rates are the benchmark's job)
    for key in ("fps_16", "fps_24", "record_fps_24", "max_ui_stall_ms"):
        assert isinstance(result[key], float) and result[key] >= 0, key
    for size in (16, 24):
        runs = result[f"runs_{size}"]
        assert runs["conductance_map"]["status"] == "completed"
        assert runs["program_array"]["status"] == "completed"
        prog = runs["program_array"]
        assert isinstance(prog["frames"], int) and prog["wall_s"] > 0
        assert result[f"fps_{size}"] == round(prog["frames"] / prog["wall_s"], 2)
