"""The phoneme-timings JSON a user can hand in: round trip, pauses, and one clear error per mistake."""

import json

import pytest

from omnisync_core.errors import OmniSyncError
from omnisync_core.speech import PhonemeTiming, WordTiming, read_timings_json, write_timings_json
from omnisync_core.speech.timing import read_word_timings_json


def test_round_trip_keeps_ipa_and_pauses(tmp_path):
    phonemes = [PhonemeTiming(0.0, 0.1, ""), PhonemeTiming(0.1, 0.15, "p"), PhonemeTiming(0.15, 0.32, "aɪ"),
                PhonemeTiming(0.32, 0.4, "ʃ")]
    words = [WordTiming(0.1, 0.32, "pie")]
    path = write_timings_json(tmp_path / "t.json", phonemes, words)
    assert "aɪ" in path.read_text(encoding="utf-8")  # readable IPA, not \\u escapes
    assert read_timings_json(path) == phonemes and read_word_timings_json(path) == words
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]  # no temporary file left


def test_hand_written_file_with_omitted_phoneme_is_a_pause(tmp_path):
    path = tmp_path / "hand.json"
    path.write_text(json.dumps({"phonemes": [{"start": 0, "end": 0.2}, {"start": 0.2, "end": 0.3, "phoneme": "m"}]}))
    assert read_timings_json(path) == [PhonemeTiming(0, 0.2, ""), PhonemeTiming(0.2, 0.3, "m")]
    assert read_word_timings_json(path) == []


@pytest.mark.parametrize("content, message", [
    ("not json", "cannot read timings"),
    ('{"words": []}', 'expected an object {"phonemes"'),
    ('{"phonemes": {}}', "must be a list"),
    ('{"phonemes": [{"start": 0.5, "end": 0.2, "phoneme": "a"}]}', "ends (0.2) before it starts (0.5)"),
    ('{"phonemes": [{"start": "0", "end": 1, "phoneme": "a"}]}', "'start' must be a number"),
    ('{"phonemes": [{"start": 0, "end": 1, "phoneme": 3}]}', "'phoneme' must be a string"),
    ('{"phonemes": [{"start": 1, "end": 2, "phoneme": "a"}, {"start": 0, "end": 1, "phoneme": "b"}]}', "sort by time"),
])
def test_malformed_files_are_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(OmniSyncError) as error:
        read_timings_json(path)
    assert message in str(error.value) and "bad.json" in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(OmniSyncError, match="does not exist"):
        read_timings_json(tmp_path / "none.json")
