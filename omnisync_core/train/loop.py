"""The training loop: flow-matching velocity loss on latents, under ``accelerate``.

    x_sigma = (1 - sigma) * x0 + sigma * eps,   loss = || v_theta(x_sigma, sigma, source, audio) - (eps - x0) ||^2

optionally weighted towards the mouth: each latent pixel's squared error is multiplied by
``1 + mouth_weight * exp(-d^2 / (2 (mouth_spread * face_width)^2))`` (d: distance to that frame's
mouth centre; the same Gaussian as the DS-CFG guidance map), normalised to a mean weight of 1.

One process on CPU or one GPU with ``omnisync train --config FILE``; many GPUs / nodes with
``accelerate launch -m omnisync_core.cli train --config FILE``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import OmniSyncError
from ..model.hide_mouth import MouthReference, prepare_source
from .checkpoint import EMA, list_checkpoints, load_checkpoint, prune_checkpoints, save_checkpoint
from .config import TrainConfig, build_model_config
from .dataset import StepSampler, TrainDataset, load_shards

log = logging.getLogger(__name__)


def lr_lambda(config: TrainConfig):
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        span = max(1, config.steps - config.warmup_steps)
        progress = min(1.0, (step - config.warmup_steps) / span)
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def mouth_weights(
    mouth: torch.Tensor,  # [B, T, 2] (x, y) crop px
    width: torch.Tensor,  # [B, T] crop px
    size: tuple[int, int],  # (h, w) latent pixels
    downscale: int,
    mouth_weight: float,
    spread: float,
) -> torch.Tensor:  # [B, T, 1, h, w], mean 1 per frame
    from ..sampling import guidance_map, to_latent_px

    b, t = width.shape
    centre, latent_width = to_latent_px(mouth.flatten(0, 1), width.flatten(0, 1), downscale)
    g = guidance_map(size, centre, latent_width, 1.0, 1.0 + mouth_weight, spread)
    g = g / g.mean(dim=(-2, -1), keepdim=True)
    return g.unflatten(0, (b, t))


def flow_matching_loss(
    model, latent_space, batch: dict[str, torch.Tensor], mouth_weight: float = 0.0, mouth_spread: float = 0.25,
    reader=None, lip_weight: float = 0.0, parts: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Velocity loss of one batch (target/source [B,T,3,S,S] 0..1, audio [B,T,W,D], sigma [B], noise, drop;
    with ``mouth_weight`` > 0 or a ``reader`` also mouth [B,T,2] and width [B,T] of the target frames in crop
    px). With a `lip.MouthReader` and ``lip_weight`` > 0 adds ``lip_weight * L_lip`` on the clean-frame guess
    x0_hat = x - sigma * v (pixel latent spaces only: the decode must pass gradients). ``parts`` (a dict)
    receives each term's value (detached; read when logging, so no device sync mid-step)."""
    target, source = batch["target"], batch["source"]
    b, t = target.shape[:2]
    with torch.no_grad():
        x0 = latent_space.encode(target.flatten(0, 1)).unflatten(0, (b, t))  # [B, T, C, h, w]
        src = latent_space.encode(source.flatten(0, 1)).unflatten(0, (b, t))  # [B, T, C, h, w]
        config = getattr(model, "module", model).config  # (DDP wraps the model)
        ref = None
        if "reference" in batch:  # another frame of the clip fills the hidden mouth ("self" pairing)
            ref = MouthReference(latent_space.encode(batch["reference"]), batch["reference_mouth"],
                                 batch["reference_width"])  # fmt: skip
        elif "source_ref" in batch:  # one source frame's mouth fills the others' (hide_fill "reference")
            k = batch["source_ref"].long()  # [B]
            rows = torch.arange(b, device=k.device)
            ref = MouthReference(src[rows.to(src.device), k.to(src.device)],
                                 batch["source_mouth"][rows, k], batch["source_width"][rows, k])  # fmt: skip
        src = prepare_source(config, src, batch["source_mouth"], batch["source_width"], ref)  # [B, T, C, h, w]
    eps = batch["noise"].to(x0)  # [B, T, C, h, w]
    sigma = batch["sigma"].to(x0)  # [B]
    s = sigma.view(b, 1, 1, 1, 1)
    x = (1 - s) * x0 + s * eps  # [B, T, C, h, w]
    motion = None
    if "lip_map" in batch:  # the target mouth shape (renderer): [B, T, 3, S, S] -> the latent grid
        from ..model.lip_map import to_latent_grid

        motion = to_latent_grid(batch["lip_map"].to(x0), latent_space.downscale)  # [B, T, M, h, w]
    v = model(x, sigma, src, batch["audio"].to(x0), audio_drop=batch["drop"], motion=motion)
    if mouth_weight <= 0:
        loss = F.mse_loss(v.float(), (eps - x0).float())
    else:
        weight = mouth_weights(batch["mouth"].to(x0), batch["width"].to(x0), tuple(x0.shape[-2:]),
                               latent_space.downscale, mouth_weight, mouth_spread)  # fmt: skip
        loss = (weight * (v.float() - (eps - x0).float()) ** 2).mean()
    if parts is not None:
        parts["flow"] = loss.detach()
    if reader is None or lip_weight <= 0:
        return loss
    from .lip import lip_loss

    x0_hat = latent_space.decode((x - s * v).float().flatten(0, 1))  # [B*T, 3, S, S], differentiable
    lip = lip_loss(reader, x0_hat, target.flatten(0, 1).to(x0_hat),
                   batch["mouth"].flatten(0, 1).to(x0_hat), batch["width"].flatten(0, 1).to(x0_hat))  # fmt: skip
    if parts is not None:
        parts["lip"] = lip.detach()
    return loss + lip_weight * lip


def _mixed_precision(config: TrainConfig) -> str:
    if config.mixed_precision == "auto":
        return "bf16" if torch.cuda.is_available() and config.device != "cpu" else "no"
    return config.mixed_precision


def _resume_folder(config: TrainConfig) -> Path | None:
    if config.resume in (None, "", "none"):
        return None
    if config.resume == "auto":
        found = list_checkpoints(Path(config.output_dir))
        return found[-1] if found else None
    return Path(config.resume)


def train(config: TrainConfig, max_steps: int | None = None) -> dict:
    """Run (or resume) training. ``max_steps`` stops early after that global step (tests, time-boxed
    jobs) without changing the schedule. Returns {"step", "losses": {step: loss}, "checkpoints"}."""
    from accelerate import Accelerator
    from torch.utils.data import DataLoader

    from ..model import OmniSyncDiT
    from ..vae import make_latent_space

    accelerator = Accelerator(
        mixed_precision=_mixed_precision(config), gradient_accumulation_steps=config.grad_accum,
        cpu=config.device == "cpu",
    )  # fmt: skip
    out = Path(config.output_dir)
    torch.manual_seed(config.seed)
    model_config = build_model_config(config.model).replace(gradient_checkpointing=config.gradient_checkpointing)
    model = OmniSyncDiT(model_config)
    if config.init_from:
        from ..hub import load_state_dict_strict, resolve_model

        folder = resolve_model(config.init_from)
        load_state_dict_strict(model, folder / "model.safetensors")
    model.to(accelerator.device)
    latent_space = make_latent_space(model_config.latent, device=accelerator.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=tuple(config.betas),
                                  weight_decay=config.weight_decay)  # fmt: skip
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config))
    ema = EMA(model, config.ema_decay, config.ema_warmup)
    step = 0
    resume = _resume_folder(config)
    if resume is not None:
        step = load_checkpoint(resume, model, ema, optimizer, scheduler)
        accelerator.print(f"resumed from {resume} at step {step}")

    reader = None
    if config.lip_weight > 0:
        from .lip import load_reader

        kind = model_config.latent.get("kind")
        if kind != "pixel":
            raise OmniSyncError("lip_weight needs a pixel latent space (its clean-frame guess is decoded with "
                                f"gradients); this model uses {kind!r}: set lip_weight 0")  # fmt: skip
        reader = load_reader(config.lip_reader).to(accelerator.device)

    shards, records = load_shards(config.data)
    dataset = TrainDataset(shards, config, model_config)
    per_step = config.batch_size * config.grad_accum * accelerator.num_processes
    sampler = StepSampler(step * per_step, (config.steps - step) * per_step)
    loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.num_workers,
                        drop_last=True)  # fmt: skip
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)

    writer = None
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2))
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "logs"))

    stop = config.steps if max_steps is None else min(config.steps, max_steps)
    losses: dict[int, float] = {}
    checkpoints: list[str] = []
    running, micro, started = 0.0, 0, time.time()
    model.train()
    for batch in loader:
        if step >= stop:
            break
        with accelerator.accumulate(model):
            parts: dict[str, torch.Tensor] = {}
            loss = flow_matching_loss(model, latent_space, batch, config.mouth_weight, config.mouth_spread,
                                      reader, config.lip_weight, parts)  # fmt: skip
            accelerator.backward(loss)
            running += loss.item() / config.grad_accum
            micro += 1
            grad_norm = None
            if accelerator.sync_gradients:
                max_norm = config.grad_clip if config.grad_clip > 0 else float("inf")
                grad_norm = float(accelerator.clip_grad_norm_(model.parameters(), max_norm))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if not accelerator.sync_gradients:
            continue
        scheduler.step()
        step += 1
        ema.update(accelerator.unwrap_model(model), step)
        losses[step] = running
        if writer is not None and (step % config.log_every == 0 or step == stop):
            writer.add_scalar("train/loss", running, step)
            for name, value in parts.items():
                writer.add_scalar(f"train/loss_{name}", float(value), step)
            writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
            writer.add_scalar("train/grad_norm", grad_norm, step)
            writer.add_scalar("train/steps_per_s", step / max(1e-9, time.time() - started), step)
            lip = f" (lip {float(parts['lip']):.5f})" if "lip" in parts else ""
            accelerator.print(f"step {step}/{config.steps} loss {running:.4f}{lip} "
                              f"lr {scheduler.get_last_lr()[0]:.2e} grad {grad_norm:.3f}")  # fmt: skip
        running = 0.0
        if accelerator.is_main_process:
            if step % config.checkpoint_every == 0 or step == config.steps:
                folder = save_checkpoint(out / "checkpoints" / f"step-{step:06d}", accelerator.unwrap_model(model),
                                         ema, optimizer, scheduler, step)  # fmt: skip
                prune_checkpoints(out, config.keep_checkpoints)
                checkpoints.append(str(folder))
            if config.validate_every and step % config.validate_every == 0:
                _validate(config, accelerator.unwrap_model(model), ema, latent_space, dataset, records, step, writer)
                model.train()
        accelerator.wait_for_everyone()
    if writer is not None:
        writer.close()
    accelerator.end_training()
    return {"step": step, "losses": losses, "checkpoints": checkpoints}


def _validate(config, model, ema, latent_space, dataset, records, step, writer) -> Path:
    """Render the held-out segment with the EMA weights: [source | generated] mp4 in output_dir/validation."""
    from .validate import generate, validation_segment, write_side_by_side

    v = config.validation
    clip = v.get("clip", 0)
    if isinstance(clip, str):
        clip = next(i for i, r in enumerate(records) if r["id"] == clip or r["source"].endswith(clip))
    shard = dataset.shards[clip]
    crops, audio, mouth, width = validation_segment(shard, dataset, clip, v.get("start", 0), v.get("frames", 16))
    ema_model = type(model)(model.config).to(next(model.parameters()).device)
    ema.copy_to(ema_model)
    new = generate(ema_model, latent_space, crops, audio, mouth, width, v.get("steps", 8), v.get("seed", 0))
    path = write_side_by_side(Path(config.output_dir) / "validation" / f"step-{step:06d}.mp4", crops, new, shard.fps)
    if writer is not None:
        writer.add_scalar("val/l1_to_source", float((new - crops).abs().mean()), step)
    return path
