import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from omnisync_core.errors import OmniSyncError
from omnisync_core.hub import hub_file, load_omnisync, resolve_model, save_pretrained
from omnisync_core.model import OmniSyncDiT, preset
from omnisync_core.vae import PixelSpace, make_latent_space

from .hub_standin import put_folder_in_hub, put_in_hub

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _saved_tiny(tmp_path, seed=0, **overrides):
    torch.manual_seed(seed)
    model = OmniSyncDiT(preset("tiny", **overrides))
    return model, save_pretrained(model, tmp_path / f"saved{seed}")


def test_save_then_load_local_folder_and_models_dir(tmp_path):
    model, folder = _saved_tiny(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_omnisync(folder)
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.model.state_dict()[k])
    assert loaded.config == model.config and isinstance(loaded.latent_space, PixelSpace)
    # models_dir/<owner>--<name> is found before the Hub
    md = tmp_path / "models"
    md.mkdir()
    folder.rename(md / "me--tiny")
    assert resolve_model("me/tiny", models_dir=md, required=("config.json",)) == md / "me--tiny"


def test_load_through_cache_with_revision_pinning(tmp_path, offline):
    cache = tmp_path / "cache"
    _, f0 = _saved_tiny(tmp_path, 0)
    m1, f1 = _saved_tiny(tmp_path, 1)
    c0 = put_folder_in_hub(cache, "omnisync/tiny", f0, revision="v0")
    put_folder_in_hub(cache, "omnisync/tiny", f1, revision="main")
    latest = load_omnisync("omnisync/tiny", cache_dir=cache)
    assert torch.equal(latest.model.null_audio, m1.null_audio)
    pinned = load_omnisync("omnisync/tiny", revision=c0, cache_dir=cache)
    assert not torch.equal(pinned.model.null_audio, m1.null_audio)
    assert pinned.path.name == c0


def test_offline_missing_names_repo_file_folder(tmp_path, offline):
    with pytest.raises(OmniSyncError) as info:
        load_omnisync("omnisync/absent", cache_dir=tmp_path / "cache", models_dir=tmp_path / "models")
    msg = str(info.value)
    assert (
        "omnisync/absent" in msg
        and "model.safetensors" in msg
        and str(tmp_path / "models" / "omnisync--absent") in msg
    )
    with pytest.raises(OmniSyncError) as info:
        hub_file(
            "opencv/face_detection_yunet", "yunet.onnx", cache_dir=tmp_path / "c", models_dir=tmp_path / "m"
        )
    msg = str(info.value)
    assert (
        "opencv/face_detection_yunet" in msg and "yunet.onnx" in msg and "opencv--face_detection_yunet" in msg
    )


def test_hub_file_order(tmp_path, offline):
    cache = tmp_path / "cache"
    put_in_hub(cache, "a/b", {"w.bin": b"cache"})
    assert hub_file("a/b", "w.bin", cache_dir=cache).read_bytes() == b"cache"
    (tmp_path / "m" / "a--b").mkdir(parents=True)
    (tmp_path / "m" / "a--b" / "w.bin").write_bytes(b"models")
    assert hub_file("a/b", "w.bin", models_dir=tmp_path / "m", cache_dir=cache).read_bytes() == b"models"
    (tmp_path / "x.bin").write_bytes(b"local")
    assert hub_file("a/b", "w.bin", local_path=tmp_path / "x.bin").read_bytes() == b"local"


def test_corrupted_safetensors(tmp_path):
    _, folder = _saved_tiny(tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(OmniSyncError, match="corrupted"):
        load_omnisync(folder)
    (folder / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(OmniSyncError, match="corrupted"):
        load_omnisync(folder)


def test_config_weights_mismatch_names_keys(tmp_path):
    _, folder = _saved_tiny(tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["config"]["depth"] = 3
    cfg["config"]["width"] = 48
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(OmniSyncError) as info:
        load_omnisync(folder)
    msg = str(info.value)
    assert "missing keys" in msg and "blocks.2." in msg and "shape mismatch" in msg


def test_not_a_repo_id(tmp_path):
    with pytest.raises(OmniSyncError, match="neither an existing local folder"):
        resolve_model(str(tmp_path / "nope"))


def test_offline_env_before_import_in_subprocess(tmp_path):
    """The real user path: HF_HUB_CACHE + HF_HUB_OFFLINE=1 set before huggingface_hub is imported."""
    cache = tmp_path / "cache"
    _, folder = _saved_tiny(tmp_path)
    put_folder_in_hub(cache, "omnisync/tiny", folder)
    script = textwrap.dedent(
        """
        import sys
        from omnisync_core.errors import OmniSyncError
        from omnisync_core.hub import load_omnisync
        m = load_omnisync("omnisync/tiny")
        print("loaded", m.config.preset)
        try:
            load_omnisync("omnisync/other", models_dir=sys.argv[1])
        except OmniSyncError as e:
            print("error:", e)
        """
    )
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "models")], env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "loaded tiny" in out.stdout
    assert "omnisync/other" in out.stdout and "model.safetensors" in out.stdout
    assert "omnisync--other" in out.stdout


# ------------------------------------------------------------------------------------------------
# latent spaces


def test_pixel_space_roundtrip_and_unshuffle():
    images = torch.rand(5, 3, 16, 16)
    for f in (1, 2, 4):
        space = PixelSpace(f, chunk=2)
        z = space.encode(images)
        assert z.shape == (5, 3 * f * f, 16 // f, 16 // f) and space.channels == 3 * f * f
        assert z.min() >= -1 and z.max() <= 1
        assert torch.allclose(space.decode(z), images, atol=1e-6)
    with pytest.raises(OmniSyncError, match="multiple"):
        PixelSpace(4).encode(torch.rand(1, 3, 10, 10))
    with pytest.raises(OmniSyncError, match=r"\[T, 3, H, W\]"):
        PixelSpace(2).encode(torch.rand(3, 16, 16))


def _tiny_vae_dir(tmp_path, kind):
    from diffusers import AutoencoderKL, AutoencoderTiny

    torch.manual_seed(0)
    if kind == "kl":
        vae = AutoencoderKL(
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
            block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=8,
            sample_size=32,
        )  # fmt: skip
    else:
        vae = AutoencoderTiny(
            encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8),
            num_encoder_blocks=(1, 1), num_decoder_blocks=(1, 1), latent_channels=4,
        )  # fmt: skip
    out = tmp_path / kind
    vae.save_pretrained(out, safe_serialization=True)
    return out


@pytest.mark.parametrize("kind", ["kl", "tiny"])
def test_diffusers_adapters_through_hub_standin(tmp_path, offline, kind):
    cache = tmp_path / "cache"
    put_folder_in_hub(cache, f"test/{kind}-vae", _tiny_vae_dir(tmp_path, kind))
    space = make_latent_space({"kind": kind, "repo": f"test/{kind}-vae", "revision": None}, cache_dir=cache)
    assert space.channels == 4 and space.downscale == 2
    space.chunk = 2
    images = torch.rand(5, 3, 16, 16)
    z = space.encode(images)
    assert z.shape == (5, 4, 8, 8)
    out = space.decode(z)
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    # chunking does not change the result
    space.chunk = 5
    assert torch.allclose(space.encode(images), z, atol=1e-5)


def test_starter_alias_and_half_precision_export(tmp_path, monkeypatch, capsys):
    import omnisync_core.hub as hub_module
    from omnisync_core.cli import main

    model, folder = _saved_tiny(tmp_path)
    ckpt = tmp_path / "run" / "checkpoints" / "step-000010"  # laid out as the trainer writes it
    ckpt.parent.mkdir(parents=True)
    folder.rename(ckpt)
    (ckpt / "training").mkdir()
    (ckpt / "training" / "state.json").write_text("{}")
    out = tmp_path / "starter"
    assert main(["model", "export", "--checkpoint", str(tmp_path / "run"), "--out", str(out), "--dtype", "fp16",
                 "--sampler", "steps=7", "w_peak=2.5"]) == 0  # fmt: skip
    from safetensors.torch import load_file

    assert all(v.dtype == torch.float16 for v in load_file(str(out / "model.safetensors")).values())
    from omnisync_core.filemode import normal_file_mode

    assert all((out / f).stat().st_mode & 0o777 == normal_file_mode() for f in ("model.safetensors", "config.json"))
    assert (out / "model.safetensors").stat().st_size < 0.6 * (ckpt / "model.safetensors").stat().st_size
    monkeypatch.setattr(hub_module, "STARTER_DIR", out)
    loaded = load_omnisync("starter")  # the name of the shipped weights
    assert loaded.path == out and loaded.config.sampler["steps"] == 7 and loaded.config.sampler["w_peak"] == 2.5
    for k, v in model.state_dict().items():
        assert torch.allclose(v, loaded.model.state_dict()[k], atol=1e-3, rtol=1e-3)
    monkeypatch.setattr(hub_module, "STARTER_DIR", tmp_path / "nowhere")
    with pytest.raises(OmniSyncError, match="no starter weights"):
        resolve_model("starter")
