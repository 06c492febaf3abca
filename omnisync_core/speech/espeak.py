"""eSpeak NG through ctypes: the library and voice data come from the ``espeakng-loader`` wheel (no apt,
nothing downloaded); a system ``libespeak-ng`` is the fallback where that wheel does not exist.

The library keeps one global state (voice, rate, pitch, the synthesis callback), so this process loads
a private copy of it (other packages may load the same file), every call here holds one lock, and each
synthesis sets what it needs first.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OmniSyncError

# espeak_AUDIO_OUTPUT, espeak_Initialize options, espeak_Synth flags, parameters, event types, errors
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS, INITIALIZE_PHONEME_IPA, INITIALIZE_DONT_EXIT = 0x0001, 0x0002, 0x8000
CHARS_UTF8, ENDPAUSE = 0x1, 0x1000
RATE, VOLUME, PITCH, RANGE = 1, 2, 3, 4
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_END, EVENT_MSG_TERMINATED, EVENT_PHONEME = 0, 1, 5, 6, 7
EE_OK = 0
RATE_RANGE = (80, 450)  # words per minute that eSpeak NG accepts
PITCH_RANGE = (0, 100)


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):  # espeak_EVENT
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]  # fmt: skip


class _Voice(ctypes.Structure):  # espeak_VOICE
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]  # fmt: skip


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Voice:
    name: str  # "English (America)"
    identifier: str  # "gmw/en-US": what eSpeak NG loads
    languages: tuple[str, ...]  # ("en-us",), most preferred first
    gender: str  # "male", "female" or ""


@dataclass(frozen=True)
class Event:
    kind: int  # EVENT_WORD, EVENT_PHONEME, EVENT_END
    sample: int  # audio sample where it starts
    text_position: int  # 1-based character position in the text (words)
    length: int  # characters (words)
    phoneme: str  # IPA, phoneme events only


@dataclass(frozen=True)
class Raw:
    samples: np.ndarray  # int16 [N]
    sample_rate: int
    events: list[Event]


def find_library() -> tuple[str, str | None]:
    """(library path, data folder or None for the library's own default)."""
    try:
        import espeakng_loader
    except ImportError:
        espeakng_loader = None
    if espeakng_loader is not None:
        library, data = Path(espeakng_loader.get_library_path()), Path(espeakng_loader.get_data_path())
        if library.is_file() and data.is_dir():
            return str(library), str(data)
    system = ctypes.util.find_library("espeak-ng")
    if system:
        return system, os.environ.get("ESPEAK_DATA_PATH")
    raise OmniSyncError("text to speech needs eSpeak NG: pip install espeakng-loader (it ships the library and "
                        "its voices), or install your system's espeak-ng package")


def _private_copy(path: str) -> ctypes.CDLL:
    """Load our own instance of the library: a copy under another name, so that another package in the
    same process (other TTS nodes in ComfyUI load the same espeakng-loader library) can neither change
    our voice or callback nor be changed by us. The copy is removed once loaded (not on Windows, where
    a loaded DLL cannot be deleted and the plain library is used)."""
    import platform
    import shutil
    import tempfile

    if platform.system() == "Windows" or not os.path.isfile(path):
        return ctypes.CDLL(path)
    folder = tempfile.mkdtemp(prefix="omnisync-espeak-")
    try:
        copy = os.path.join(folder, os.path.basename(path))
        shutil.copyfile(path, copy)
        return ctypes.CDLL(copy)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class _Engine:
    """The one eSpeak NG instance of this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lib: ctypes.CDLL | None = None
        self.sample_rate = 0
        self._chunks: list[bytes] = []
        self._events: list[Event] = []
        self._callback = _Callback(self._collect)  # kept alive as long as the engine

    def _start(self) -> ctypes.CDLL:
        if self.lib is not None:
            return self.lib
        path, data = find_library()
        try:
            lib = _private_copy(path)
        except OSError as error:
            raise OmniSyncError(f"cannot load eSpeak NG from {path} ({error}); reinstall espeakng-loader") from error
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p]  # fmt: skip
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        options = INITIALIZE_PHONEME_EVENTS | INITIALIZE_PHONEME_IPA | INITIALIZE_DONT_EXIT
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode() if data else None, options)
        if rate <= 0:
            raise OmniSyncError(f"eSpeak NG did not start (its voice data in {data} is missing or unreadable); "
                                "reinstall espeakng-loader")
        lib.espeak_SetSynthCallback(self._callback)
        self.lib, self.sample_rate = lib, int(rate)
        return lib

    def _collect(self, wav, count, events) -> int:
        if wav and count > 0:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        i = 0
        while events[i].type != EVENT_LIST_TERMINATED:
            e = events[i]
            phoneme = e.id.string.decode("utf-8", "ignore") if e.type == EVENT_PHONEME else ""
            self._events.append(Event(e.type, e.sample, e.text_position, e.length, phoneme))
            i += 1
        return 0  # 0: go on

    def version(self) -> str:
        with self.lock:
            lib = self._start()
            lib.espeak_Info.restype = ctypes.c_char_p
            lib.espeak_Info.argtypes = [ctypes.c_void_p]
            return (lib.espeak_Info(None) or b"?").decode("utf-8", "replace")

    def voices(self, variants: bool = False) -> list[Voice]:
        """The voices (languages), or with ``variants`` the variants that go after '+' (identifier "!v/f3")."""
        with self.lock:
            lib = self._start()
            spec, name = _Voice(), ctypes.create_string_buffer(b"variant")
            spec.languages = ctypes.cast(name, ctypes.c_void_p).value
            listed = lib.espeak_ListVoices(ctypes.byref(spec) if variants else None)
            found, i = [], 0
            while listed[i]:
                v = listed[i].contents
                gender = {1: "male", 2: "female"}.get(v.gender, "")
                found.append(Voice(v.name.decode("utf-8", "replace"), v.identifier.decode("utf-8", "replace"),
                                   _languages(v.languages), gender))  # fmt: skip
                i += 1
            return found

    def _stop(self) -> None:
        """Close the instance (its memory freed, the private copy unloaded): the next call starts a fresh one."""
        lib, self.lib = self.lib, None
        if lib is None:
            return
        lib.espeak_Terminate()
        if hasattr(lib, "_handle") and os.name != "nt":
            import _ctypes

            _ctypes.dlclose(lib._handle)

    def synthesize(self, text: str, voice: str, rate: int, pitch: int) -> Raw:
        """Speak ``text`` with the eSpeak NG voice ``voice`` (an identifier, with an optional +variant).

        Every call speaks on a freshly started instance: eSpeak NG keeps state from one utterance to the next
        (the same text spoken twice in a row comes out a few samples longer or shorter, its phonemes moved),
        so the same text, voice, rate and pitch always give the same samples, whatever was spoken before
        (a resumed run finds its speech unchanged; a ComfyUI graph run twice gives the same video)."""
        with self.lock:
            self._stop()
            try:
                return self._speak(self._start(), text, voice, rate, pitch)
            finally:
                self._stop()

    def _speak(self, lib: ctypes.CDLL, text: str, voice: str, rate: int, pitch: int) -> Raw:
        if lib.espeak_SetVoiceByName(voice.encode()) != EE_OK:
            raise OmniSyncError(f"eSpeak NG cannot load the voice '{voice}'; see `omnisync tts --list-voices`")
        lib.espeak_SetParameter(RATE, int(rate), 0)
        lib.espeak_SetParameter(PITCH, int(pitch), 0)
        self._chunks, self._events = [], []
        data = text.encode("utf-8")
        status = lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, CHARS_UTF8 | ENDPAUSE, None, None)
        lib.espeak_Synchronize()
        chunks, events, self._chunks, self._events = self._chunks, self._events, [], []
        if status != EE_OK:
            raise OmniSyncError(f"eSpeak NG could not speak the text (error {status})")
        samples = np.frombuffer(b"".join(chunks), dtype=np.int16).copy()
        return Raw(samples, self.sample_rate, events)


def _languages(pointer: int | None) -> tuple[str, ...]:
    """espeak_VOICE.languages: (priority byte, name, NUL) pairs up to a zero priority byte."""
    if not pointer:
        return ()
    found, offset = [], 0
    while ctypes.string_at(pointer + offset, 1) != b"\0":
        name = ctypes.string_at(pointer + offset + 1)
        found.append(name.decode("utf-8", "replace"))
        offset += 2 + len(name)
    return tuple(found)


ENGINE = _Engine()
