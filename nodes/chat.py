"""OmniSyncChat: STRING -> the answer of a chat model behind an OpenAI-compatible endpoint (streamed)."""

from __future__ import annotations

from omnisync_core.speech.chat import DEFAULT_KEY_ENV, DEFAULT_SYSTEM, ChatSettings, ask

from .runtime import CATEGORY, cancelled


class OmniSyncChat:
    DESCRIPTION = ("Ask a chat model through an OpenAI-compatible endpoint (llama.cpp server, Ollama, vLLM, LM "
                   "Studio, hosted services) and give its answer as text, e.g. for OmniSync Text To Speech. The "
                   "API key is read from an environment variable, never stored in the workflow.")
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("answer",)
    OUTPUT_TOOLTIPS = ("The model's answer, sentence by sentence joined into one text.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text": ("STRING", {"multiline": True, "default": "", "tooltip": "The question (e.g. from "
                                "OmniSync Transcribe)."}),
            "url": ("STRING", {"default": "http://127.0.0.1:8080/v1",
                               "tooltip": "API base: http://127.0.0.1:8080/v1 (llama.cpp), "
                                          "http://127.0.0.1:11434/v1 (Ollama), https://api.openai.com/v1 ..."}),
            "model": ("STRING", {"default": "local", "tooltip": "Model name as the server knows it."}),
            "system": ("STRING", {"multiline": True, "default": DEFAULT_SYSTEM, "tooltip": "System prompt."}),
            "key_env": ("STRING", {"default": DEFAULT_KEY_ENV, "tooltip": "Environment variable holding the API "
                                   "key; unset: no key is sent (local servers)."}),
            "timeout": ("FLOAT", {"default": 60.0, "min": 1.0, "max": 3600.0,
                                  "tooltip": "Seconds to wait for a connection and for each next piece."}),
            "max_tokens": ("INT", {"default": 400, "min": 1, "max": 32768, "tooltip": "Longest answer in tokens."}),
        }}  # fmt: skip

    def run(self, text, url="http://127.0.0.1:8080/v1", model="local", system=DEFAULT_SYSTEM, key_env=DEFAULT_KEY_ENV,
            timeout=60.0, max_tokens=400):
        from omnisync_core.errors import OmniSyncError

        if not text.strip():
            raise OmniSyncError("no question: connect a text (e.g. OmniSync Transcribe's text) to the chat node")
        answer = []
        for sentence in ask(text, ChatSettings(url, model, key_env, system, timeout, max_tokens)):
            cancelled()
            answer.append(sentence)
        return (" ".join(answer),)


NODES = {"OmniSyncChat": (OmniSyncChat, "OmniSync Chat")}
