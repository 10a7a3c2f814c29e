"""bench/common.py: the rules every benchmark relies on (no timing is asserted here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.timed_model import CLOCK_PARTS, clock_rounds, gaps_ms


def test_timeouts_and_errors_enter_the_percentiles_at_the_timeout_value():
    samples = common.Samples(timeout=30.0)
    for value in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0):
        samples.add(value)
    samples.add_timeout()
    samples.add_error("connection refused")
    summary = samples.summary()
    assert summary["n"] == 10
    assert summary["timeouts"] == 1 and summary["errors"] == 1
    assert summary["first_errors"] == ["connection refused"]
    # Dropping the two failures would give a p95 of 7.65; counted, they dominate it.
    assert summary["p95"] == 30.0
    assert summary["max"] == 30.0
    assert common.failures_note(summary) == "1 timeout, 1 error"


def test_percentile_interpolates_between_ranks():
    assert common.percentile([], 50) is None
    assert common.percentile([5.0], 95) == 5.0
    assert common.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert common.percentile(list(range(1, 101)), 95) == pytest.approx(95.05)


def test_rotations_put_each_item_first_equally_often_and_keep_every_item_each_round():
    orders = common.rotations(["a", "b", "c"], 6)
    assert orders[:3] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert all(sorted(order) == ["a", "b", "c"] for order in orders)
    assert [order[0] for order in orders].count("b") == 2
    assert common.rotations([], 3) == []


def test_load_above_the_threshold_per_core_is_flagged(monkeypatch):
    assert common.is_loaded(2.5, cores=2, limit=1.0)
    assert not common.is_loaded(1.9, cores=2, limit=1.0)
    loads = iter([0.5, 3.0, 1.0, 2.2])
    monkeypatch.setattr(common, "load_average", lambda: next(loads))
    watch = common.LoadWatch(cores=2, limit_per_core=1.0)  # before: 0.5
    assert watch.round_started() is True  # 3.0
    assert watch.round_started() is False  # 1.0
    report = watch.finish()  # after: 2.2
    assert report["rounds_flagged"] == 1
    assert report["before"] == 0.5 and report["after"] == 2.2 and report["max"] == 3.0
    assert "1 of 2 rounds started above 2.0 (flagged)" in common.load_note(report)


def test_loaded_samples_are_counted():
    samples = common.Samples(timeout=1.0)
    samples.add(0.1, loaded=True)
    samples.add(0.2)
    assert samples.summary()["loaded_samples"] == 1


def test_a_failing_warm_up_is_reported_not_raised():
    def boom() -> None:
        raise RuntimeError("server crashed")

    def slow() -> None:
        raise TimeoutError("no answer in 30 s")

    failed = common.warm_up("jls", boom)
    assert not failed.ok and failed.error.startswith("error: RuntimeError: server crashed")
    timed_out = common.warm_up("jls", slow)
    assert not timed_out.ok and timed_out.error.startswith("timeout:")
    assert common.warm_up("ok", lambda: None).ok


DOC = """# Benchmarks

<!-- bench:cold -->
old cold table
<!-- /bench:cold -->

Prose that stays.

<!-- bench:warm -->
old warm
table
<!-- /bench:warm -->
"""


def test_replace_marked_rewrites_only_its_own_section():
    text = common.replace_marked(DOC, "warm", "| new | table |\n")
    assert "| new | table |\n<!-- /bench:warm -->" in text
    assert "old warm" not in text
    assert "old cold table" in text and "Prose that stays." in text
    assert common.marked_sections(text) == ["cold", "warm"]
    # Idempotent: a second run replaces the first run's table, it does not stack.
    again = common.replace_marked(text, "warm", "| newer |")
    assert "| new | table |" not in again and again.count("<!-- bench:warm -->") == 1


def test_replace_marked_refuses_a_section_without_markers():
    with pytest.raises(KeyError, match="bench:engine"):
        common.replace_marked(DOC, "engine", "x")


def test_measured_env_keeps_a_bytecode_cache_instead_of_none():
    env = common.measured_env({"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/bin"}, EXTRA="1")
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PYTHONPYCACHEPREFIX"] == str(common.PYCACHE_DIR)
    assert env["PATH"] == "/bin" and env["EXTRA"] == "1"


def test_gaps_are_measured_from_a_response_end_to_the_next_arrival():
    timings = [{"arrived": 0.0, "ended": 0.010}, {"arrived": 0.012, "ended": 0.020},
               {"arrived": 0.0235, "ended": None}, {"arrived": 0.030, "ended": 0.031}]
    # The third response never ended: the gap after it is not invented.
    assert gaps_ms(timings) == pytest.approx([2.0, 3.5])


def request_marks(handed: float, cpu: float, read: float | None = None) -> list[tuple]:
    """One request's client-side marks (round_clock.MARKS), seconds; CPU time in the third."""
    marks = [("request_handed", handed, cpu), ("request_to_httpx", handed + 0.0002, cpu),
             ("request_sent", handed + 0.0003, cpu)]
    if read is not None:
        marks += [("response_read", read, cpu + 0.001), ("events_handled", 0.0004, cpu),
                  ("stream_closed", read + 0.0001, cpu + 0.001)]
    return marks


def test_the_client_clock_splits_each_gap_into_parts_that_add_up_to_it():
    # A warm-up request first (only the marks have it), then two timed requests.
    marks = request_marks(0.5, 0.1, 0.6) + request_marks(1.0, 0.2, 1.0105) \
        + request_marks(1.0145, 0.2025)
    timings = [{"arrived": 1.0004, "ended": 1.010}, {"arrived": 1.0149, "ended": 1.020}]
    (split,) = clock_rounds(marks, timings, tools_ms=[1.5])
    assert split["receive"] == pytest.approx(0.5)  # server's last byte -> client read it
    assert split["agent"] == pytest.approx(4.0 - 1.5)  # read -> next handed, minus the tool
    assert (split["send_sdk"], split["send_httpx"], split["to_server"]) == \
        pytest.approx((0.2, 0.1, 0.1))
    gap = (timings[1]["arrived"] - timings[0]["ended"]) * 1000
    assert sum(split[k] for k in CLOCK_PARTS) == pytest.approx(gap - 1.5)
    assert split["agent_cpu"] == pytest.approx(1.5)  # the thread's CPU from read to handed
    assert split["streaming"] == pytest.approx(0.4)
    # Marks that do not pair with the server's requests give nothing rather than a guess.
    assert clock_rounds(marks[:3], timings, [1.5]) == []


def test_command_version_reports_what_the_program_says(tmp_path):
    program = tmp_path / "peer"
    program.write_text("#!/bin/sh\necho 'peer 1.2.3'\n")
    program.chmod(0o755)
    assert common.command_version([str(program)]) == "peer 1.2.3"
    assert common.command_version([str(tmp_path / "missing")]).startswith("unavailable")


def test_run_all_takes_the_tables_a_bench_printed_and_marks_a_failed_run(tmp_path):
    from bench import run_all

    stdout = "progress line\n### Table\n\n| a | b |\n|---|---|\n| 1 | 2 |\n- ratio: 0.4\nwrote x\n"
    assert run_all.tables_from_stdout(stdout) == (
        "### Table\n\n| a | b |\n|---|---|\n| 1 | 2 |\n- ratio: 0.4")
    docs = tmp_path / "benchmarks.md"
    docs.write_text(DOC)
    facts = {"cores": 2, "cpu_model": "cpu", "python": "3.11", "os": "linux"}
    base = {"date": "2026-12-01T10:00:00+00:00", "seconds": 60, "load_before": 1.0,
            "load_after": 1.5}
    records = {
        "cold": {**base, "exit_code": 0, "table_md": "| new | cold |"},
        "warm": {**base, "exit_code": 1, "table_md": "", "stderr_tail": "Traceback: boom"},
        "engine": {**base, "exit_code": 0, "table_md": "| e |"},
    }
    missing = run_all.update_docs(records, facts, {"claude-code": "2.1.332"}, docs)
    text = docs.read_text()
    assert missing == ["engine"]
    assert "| new | cold |" in text and "old cold table" not in text
    assert "started 2026-12-01 09:59 UTC" in text and "claude-code 2.1.332" in text
    assert "This run failed (exit 1); no figures." in text and "Traceback: boom" in text
    assert "old warm" not in text
