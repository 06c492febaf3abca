"""``omnisync run --resume``: a run interrupted half way continues where it stopped and gives, frame for frame
and bit for bit, the video an uninterrupted run gives."""

from pathlib import Path

import numpy as np
import pytest

from omnisync_core.cancel import Cancelled
from omnisync_core.pipeline import RunSettings, run_file
from omnisync_core.resume import journal_folder
from omnisync_core.video import probe_video, read_frames
from tests.synth import make_video, tone, write_audio


def _settings(model: str | None) -> RunSettings:
    return RunSettings(model=model, preset="ultrafast", resume=True, length_policy="pingpong")


def _interrupt_after(calls: int):
    """A cancelled() check that says stop on its ``calls``-th call (tracking asks once per source frame)."""
    seen = {"n": 0}

    def cancelled() -> bool:
        seen["n"] += 1
        return seen["n"] > calls

    return cancelled


def _interrupted_then_resumed(tmp_path: Path, video: Path, seconds: float, model: str | None, stop_at: int):
    speech = write_audio(tmp_path / "s.wav", tone(seconds))
    whole, resumed = tmp_path / "whole.mp4", tmp_path / "resumed.mp4"
    run_file(video, speech, whole, _settings(model))
    assert not journal_folder(whole).exists()  # removed once the output is in place
    with pytest.raises(Cancelled):
        run_file(video, speech, resumed, _settings(model), cancelled=_interrupt_after(stop_at))
    assert not resumed.exists()
    kept = sorted(p.name for p in journal_folder(resumed).iterdir())
    assert "state.json" in kept and any(name.startswith("seg-") for name in kept), kept
    run_file(video, speech, resumed, _settings(model))
    assert not journal_folder(resumed).exists()
    return whole, resumed, kept


def test_resume_without_a_model_gives_the_same_video(tmp_path, media):
    source = media("grid_bbaf2n.mp4")  # 75 frames: pass 1 asks 75 times, then the stream
    whole, resumed, kept = _interrupted_then_resumed(tmp_path, source, 4.0, "none", 75 + 50)
    a, b = read_frames(whole), read_frames(resumed)
    assert a.shape == b.shape == (100, 288, 360, 3) and np.array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resumed.mp4", "s.wav", "whole.mp4"]


def test_resume_keeps_nothing_of_another_command(tmp_path, caplog):
    source = make_video(tmp_path / "v.mp4", 25, 1.0)  # 25 frames, no face: quick
    speech = write_audio(tmp_path / "s.wav", tone(2.0))
    out = tmp_path / "out.mp4"
    with pytest.raises(Cancelled):
        run_file(source, speech, out, _settings("none"), cancelled=_interrupt_after(25 + 30))
    assert len(list(journal_folder(out).glob("seg-*"))) >= 1
    other = _settings("none")
    other.crf = 23  # a different command: its frames must not be reused
    with caplog.at_level("WARNING", logger="omnisync_core"):
        run_file(source, speech, out, other)
    assert "other inputs or settings; starting again" in caplog.text
    assert probe_video(out).frame_count == 50 and not journal_folder(out).exists()


@pytest.mark.slow
def test_resume_with_the_starter_model_is_bit_identical(tmp_path, media):
    source = media("grid_bbaf2n.mp4")
    whole, resumed, kept = _interrupted_then_resumed(tmp_path, source, 1.6, None, 75 + 20)
    a, b = read_frames(whole), read_frames(resumed)
    assert a.shape == b.shape == (40, 288, 360, 3) and np.array_equal(a, b)
    assert sum(int(name.split("-")[2].split(".")[0]) for name in kept if name.startswith("seg-")) < 40


def test_resume_with_subtitles_continues_the_interrupted_run(tmp_path, monkeypatch):
    """``omnisync run --subtitles --resume``: the lip-sync goes to a hidden file beside OUT before the
    subtitles are muxed in; its name is fixed, so a second run finds the first one's finished frames."""
    import omnisync_core.pipeline as pipeline
    from omnisync_core import cli
    from omnisync_core.resume import ResumeJournal

    video = make_video(tmp_path / "v.mp4", 25, 1.0)  # no face: quick
    line = "Good morning, and welcome to the show."
    out, whole = tmp_path / "out.mp4", tmp_path / "whole.mp4"

    def run(target: Path) -> int:
        return cli.main(["run", "--video", str(video), "--text", line, "--subtitles", "--out", str(target),
                         "--model", "none", "--preset", "ultrafast", "--resume"])  # fmt: skip

    assert run(whole) == 0
    real = pipeline.run_file

    def pressed_ctrl_c(*args, **kwargs):  # the user stops the run after the tracking and 40 frames of lip-sync
        seen = {"n": 0}

        def cancelled() -> bool:
            seen["n"] += 1
            if seen["n"] > 25 + 40:
                raise KeyboardInterrupt
            return False

        return real(*args, **kwargs, cancelled=cancelled)

    monkeypatch.setattr(pipeline, "run_file", pressed_ctrl_c)
    assert run(out) == 130 and not out.exists()
    kept = journal_folder(tmp_path / ".out.mp4.nosubs.mp4")
    assert any(p.name.startswith("seg-") for p in kept.iterdir())
    monkeypatch.setattr(pipeline, "run_file", real)
    replayed = {"n": 0}
    frames = ResumeJournal.frames

    def counted(self):
        for frame in frames(self):
            replayed["n"] += 1
            yield frame

    monkeypatch.setattr(ResumeJournal, "frames", counted)
    assert run(out) == 0
    assert replayed["n"] >= 25  # the second run continued from the first one's frames
    assert np.array_equal(read_frames(out), read_frames(whole))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "v.mp4", "whole.mp4"]  # no hidden leftovers
