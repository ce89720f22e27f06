"""The vid2vid networks, losses, weights registry and trainer on tiny sizes, on the CPU."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch

from model import options as options_mod
from model.discriminators import ImageDiscriminator, VideoDiscriminator
from model.flow_ops import compose, warp
from model.generator import GeneratorConfig, Vid2VidGenerator
from model.losses import GANLoss, VGGLoss, feature_matching, flow_loss
from model.trainer import NonFiniteLoss, Trainer, train
from pipeline.core.weights import WeightEntry, WeightsError, load_state_dict, resolve

TINY = {"ngf": 8, "n_downsample": 2, "n_blocks": 2}


@pytest.mark.parametrize("n_local", [0, 1, 2])
@pytest.mark.parametrize("inputs, label_nc, foreground", [
    ("labels", 35, True), ("labels", 35, False), ("sketch", 3, False), ("pose", 6, False)])
def test_generator_shapes_through_every_path(n_local, inputs, label_nc, foreground):
    torch.manual_seed(0)
    cfg = GeneratorConfig(label_nc=label_nc, foreground=foreground, n_local=n_local, **TINY)
    g = Vid2VidGenerator(cfg)
    h, w = 16 * 2**n_local, 32 * 2**n_local
    labels = torch.randn(2, cfg.input_nc, h, w)
    previous = torch.rand(2, cfg.prev_nc, h, w) * 2 - 1
    current = torch.randint(0, 34, (2, h, w))
    out = g(labels, previous, current if foreground else None)
    assert out.frame.shape == (2, 3, h, w) and out.flow.shape == (2, 2, h, w) and out.mask.shape == (2, 1, h, w)
    # h_t is a tanh; the frame is not bounded by 1: the bicubic warp of x_{t-1} may overshoot a little
    assert out.hallucinated.abs().max() <= 1.0 and ((out.mask >= 0) & (out.mask <= 1)).all()
    # Eq. 4: the frame mixes the warped previous frame and the hallucination by the mask
    torch.testing.assert_close(out.frame, (1 - out.mask) * out.warped + out.mask * out.hallucinated)
    if n_local:  # the coarser stage of the progressive schedule runs on half-size inputs
        coarse = g(labels[..., ::2, ::2], previous[..., ::2, ::2], current[:, ::2, ::2] if foreground else None,
                   scales=n_local - 1)
        assert coarse.frame.shape == (2, 3, h // 2, w // 2)


def test_foreground_prior_uses_the_foreground_head_on_thing_classes():
    g = Vid2VidGenerator(GeneratorConfig(**TINY))
    labels, previous = torch.randn(1, 105, 16, 32), torch.zeros(1, 6, 16, 32)
    current = torch.full((1, 16, 32), 7)  # road everywhere ...
    current[:, 4:10, 8:20] = 26  # ... and a car
    out = g(labels, previous, current)
    heads = g.global_generator.heads
    feats = g.global_generator.features(labels, previous)
    background, foreground = heads.image(feats["image"]), heads.foreground(feats["foreground"])
    torch.testing.assert_close(out.hallucinated[..., 4:10, 8:20], foreground[..., 4:10, 8:20])
    torch.testing.assert_close(out.hallucinated[..., :4, :], background[..., :4, :])


def test_ablation_switches():
    frame_by_frame = Vid2VidGenerator(GeneratorConfig(use_history=False, foreground=False, **TINY))
    out = frame_by_frame(torch.randn(1, 105, 16, 32), None)
    assert out.flow is None and out.warped is None and torch.equal(out.frame, out.hallucinated)
    no_flow = Vid2VidGenerator(GeneratorConfig(use_flow=False, foreground=False, **TINY))
    assert no_flow(torch.randn(1, 105, 16, 32), torch.zeros(1, 6, 16, 32)).flow is None


def test_warp_zero_flow_is_identity_and_a_shift_moves_pixels_exactly():
    image = torch.rand(2, 3, 12, 20)
    torch.testing.assert_close(warp(image, torch.zeros(2, 2, 12, 20)), image)
    shift = torch.zeros(2, 2, 12, 20)
    shift[:, 0], shift[:, 1] = 3.0, -2.0
    moved = warp(image, shift)  # samples image at (x + 3, y - 2)
    torch.testing.assert_close(moved[..., 2:, :17], image[..., :-2, 3:])
    torch.testing.assert_close(compose([shift, shift]), shift * 2)


def test_gan_losses_zero_or_positive_where_they_must_be():
    real_ok, fake_ok = [[torch.ones(1, 1, 4, 4)]], [[torch.zeros(1, 1, 4, 4)]]
    lsgan = GANLoss("lsgan")
    assert lsgan(real_ok, True) == 0 and lsgan(fake_ok, False) == 0 and lsgan(fake_ok, True) > 0
    hinge = GANLoss("hinge")
    assert hinge([[torch.full((1, 1, 4, 4), 2.0)]], True) == 0 and hinge([[torch.full((1, 1, 4, 4), -2.0)]], False) == 0
    assert hinge(fake_ok, True) > 0 and hinge([[torch.full((1, 1, 4, 4), 2.0)]], True, for_discriminator=False) < 0
    nonsat = GANLoss("nonsaturating")
    assert 0 < nonsat([[torch.full((1, 1, 4, 4), 10.0)]], True) < 1e-3 < nonsat(fake_ok, True)
    with pytest.raises(ValueError, match="unknown GAN loss"):
        GANLoss("wgan")


def test_feature_matching_vgg_and_flow_losses():
    d = ImageDiscriminator(35, ndf=8, n_layers=2)
    labels, frame = torch.randn(1, 35, 32, 64), torch.rand(1, 3, 32, 64) * 2 - 1
    same = d(labels, frame)
    assert feature_matching(same, same) == 0
    assert feature_matching(d(labels, -frame), same) > 0
    vgg = VGGLoss(state_dict=None)  # random weights: the loss's form, not its values
    assert vgg(frame, frame) == 0 and vgg(frame, frame.flip(-1)) > 0
    previous = torch.rand(1, 3, 16, 32)
    shift = torch.zeros(1, 2, 16, 32)
    shift[:, 0] = 2.0
    current = warp(previous, shift)
    assert sum(flow_loss(shift, shift, torch.ones(1, 1, 16, 32), previous, current)) < 1e-6
    assert sum(flow_loss(shift * 0, shift, torch.ones(1, 1, 16, 32), previous, current)) > 1.0
    dv = VideoDiscriminator(3, ndf=8, n_layers=2)
    outputs = dv(torch.randn(1, 3, 3, 32, 64), torch.randn(1, 2, 2, 32, 64))
    assert len(outputs) == 2 and outputs[0][-1].shape[1] == 1


# ---------------------------------------------------------------- weights registry

def test_weights_registry_loads_refuses_and_explains(tmp_path):
    source = tmp_path / "served" / "net.pth"
    source.parent.mkdir()
    torch.save({"w": torch.arange(4.0)}, source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    entry = WeightEntry("net", source.as_uri(), "net.pth", digest, "test licence")
    cache = tmp_path / "cache"
    state = load_state_dict(entry, cache_dir=cache)  # "downloaded" from a file:// URL, verified
    assert torch.equal(state["w"], torch.arange(4.0)) and (cache / "net.pth").is_file()
    assert resolve(entry, user_path=source) == source
    wrong = WeightEntry("net", source.as_uri(), "net.pth", "0" * 64, "test licence")
    with pytest.raises(WeightsError, match=r"net.pth: sha256 .* does not match the registry entry 'net'"):
        resolve(wrong, cache_dir=cache)
    offline = WeightEntry("gone", "https://example.invalid/gone.pth", "gone.pth", digest, "test licence")
    with pytest.raises(WeightsError) as info:
        resolve(offline, cache_dir=cache)
    message = str(info.value)
    assert "https://example.invalid/gone.pth" in message and str((cache / "gone.pth").resolve()) in message
    with pytest.raises(WeightsError, match="downloads are disabled"):
        resolve(offline, cache_dir=cache, download=False)



def test_a_download_with_the_wrong_hash_is_not_resumed_on_the_next_try(tmp_path, monkeypatch):
    """A server that honours Range: the wrong first body must not stay as the .partial that the
    next try appends the rest to (its hash could never match again)."""
    import io
    import urllib.request

    good = bytes(range(256)) * 8
    served = {"body": b"x" * len(good)}  # the first try gets a wrong file of the right size

    class Response(io.BytesIO):
        def __init__(self, request):
            offset = int(request.headers.get("Range", "bytes=0-")[6:-1])
            super().__init__(served["body"][offset:])
            self.status = 206 if offset else 200

    monkeypatch.setattr(urllib.request, "urlopen", lambda request, timeout: Response(request))
    entry = WeightEntry("net", "https://example.invalid/net.pth", "net.pth", hashlib.sha256(good).hexdigest(), "l")
    cache = tmp_path / "cache"
    with pytest.raises(WeightsError, match="does not match"):
        resolve(entry, cache_dir=cache)
    assert not (cache / "net.pth.partial").exists()
    served["body"] = good
    assert resolve(entry, cache_dir=cache).read_bytes() == good

# ---------------------------------------------------------------- trainer

def _options(shard, output, steps=(3, 3), **train):
    return options_mod.from_dict({
        "dataset": "demo", "cache": [str(shard)], "output": str(output),
        "model": {**TINY, "n_local": 1},
        "discriminator": {"ndf": 8, "n_layers": 2, "temporal_scales": 1},
        "loss": {"lambda_vgg": 0},
        "schedule": [{"steps": steps[0], "n_frames": 4, "scales": 0, "scale": 0.5},
                     {"steps": steps[1], "n_frames": 5, "scales": 1, "crop": [128, 64]}],
        "train": {"checkpoint_every": 2, "log_every": 1, **train},
    })


def test_training_steps_lower_the_loss_on_a_fixed_clip(small_cache, tmp_path):
    _, shard = small_cache
    opts = options_mod.from_dict({
        "dataset": "demo", "cache": [str(shard)], "output": str(tmp_path / "fit"),
        "model": {"ngf": 16, "n_downsample": 2, "n_blocks": 2}, "loss": {"lambda_vgg": 0},
        "discriminator": {"ndf": 16, "n_layers": 2, "temporal_scales": 1},
        "schedule": [{"steps": 40, "n_frames": 4, "scale": 0.5}], "train": {"flip": False}})
    trainer = Trainer(opts, torch.device("cpu"))
    batch = trainer.load_batch(0, 0)

    def errors():
        with torch.no_grad():
            inputs = trainer.to_inputs(batch)
            generated = trainer.generate(inputs, 0)
            fake = torch.stack([out["frame"] for out in generated["outputs"]], 1)
            _, _, logs = trainer.losses(inputs, generated)
        return (fake - inputs["frames"][:, generated["start"]:]).abs().mean().item(), logs["g_flow"].item()

    l1_before, flow_before = errors()
    for _ in range(40):
        trainer.train_step(batch, 0)
    l1_after, flow_after = errors()
    print(f"\nfixed clip, 40 steps: L1 {l1_before:.3f} -> {l1_after:.3f}, flow loss {flow_before:.2f} -> {flow_after:.2f}")
    assert l1_after < 0.6 * l1_before and flow_after < 0.6 * flow_before


def test_progressive_schedule_and_resume_reproduce_the_uninterrupted_run(small_cache, tmp_path):
    _, shard = small_cache
    straight = train(_options(shard, tmp_path / "straight"), device="cpu")
    interrupted = tmp_path / "interrupted"
    train(_options(shard, interrupted), max_steps=4, device="cpu")  # stops mid-schedule, checkpointed
    assert not (interrupted / "final.pt").exists()
    assert torch.load(interrupted / "latest.pt", weights_only=False)["step"] == 4
    resumed = train(_options(shard, interrupted), resume=True, device="cpu")
    a, b = torch.load(straight, weights_only=False), torch.load(resumed, weights_only=False)
    assert a["step"] == b["step"] == 6 and a["stage"] == b["stage"] == 1
    for part in ("generator", "image_d", "video_ds"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), f"{part}.{key} differs after resume"
    assert a["opt_g"]["state"][0]["exp_avg"].equal(b["opt_g"]["state"][0]["exp_avg"])
    assert (tmp_path / "straight" / "tensorboard").is_dir()
    # a checkpoint of other options (or code) is set aside, not resumed
    changed = dataclasses.replace(_options(shard, interrupted), code="edited")
    restarted = torch.load(train(changed, resume=True, max_steps=1, device="cpu").parent / "latest.pt",
                           weights_only=False)
    assert restarted["step"] == 1 and list(interrupted.glob("latest.stale.pt"))


def _counting_steps(monkeypatch) -> list:
    """Count the trainer's steps (the list grows by one per step)."""
    steps, original = [], Trainer.train_step
    monkeypatch.setattr(Trainer, "train_step", lambda self, *a: steps.append(1) or original(self, *a))
    return steps


def test_a_run_whose_cache_changed_is_trained_again_not_resumed(small_cache, tmp_path, monkeypatch, caplog):
    """Outside testers: a labels change reran the rule and the trainer resumed its finished
    latest.pt, writing the old weights again. The cache's fingerprint is part of the run."""
    from pipeline.core.cache_format import cache_fingerprint
    from tests.conftest import copy_with_one_label_changed

    _, shard = small_cache
    cache, out = tmp_path / "cache.safetensors", tmp_path / "run"
    cache.write_bytes(shard.read_bytes())
    opts = _options(cache, out, steps=(1, 1))
    first = torch.load(train(opts, resume=True, device="cpu"), weights_only=False)
    assert first["identity"]["cache"] == cache_fingerprint([cache])
    copy_with_one_label_changed(shard, cache)  # the same path, one label pixel of 256x128x8 changed
    steps = _counting_steps(monkeypatch)
    again = torch.load(train(opts, resume=True, device="cpu"), weights_only=False)  # as the rule runs it
    assert len(steps) == 2 and again["step"] == 2  # both steps trained again on the new data
    assert again["identity"]["cache"] == cache_fingerprint([cache]) != first["identity"]["cache"]
    assert "not resuming" in caplog.text and "changed: cache" in caplog.text
    assert list(out.glob("latest.stale.pt"))


def test_a_finished_run_asked_again_retrains_and_a_killed_one_resumes(small_cache, tmp_path, monkeypatch, caplog):
    """``--forcerun train`` (Snakemake removes final.pt, then runs the rule) trains again; a run
    killed before its end goes on from its last checkpoint."""
    caplog.set_level("INFO", logger="model")
    _, shard = small_cache
    out = tmp_path / "run"
    opts = _options(shard, out, steps=(1, 1))
    train(opts, resume=True, device="cpu")
    (out / "final.pt").unlink()
    steps = _counting_steps(monkeypatch)
    train(opts, resume=True, device="cpu")
    assert len(steps) == 2 and "it holds the finished run (step 2) and final.pt is gone" in caplog.text
    train(opts, resume=True, device="cpu")  # final.pt there (run by hand): nothing to train
    assert len(steps) == 2
    train(_options(shard, tmp_path / "killed", steps=(1, 1)), max_steps=1, device="cpu")
    train(_options(shard, tmp_path / "killed", steps=(1, 1)), resume=True, device="cpu")
    assert len(steps) == 4 and "resumed from" in caplog.text and (tmp_path / "killed" / "final.pt").is_file()


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(small_cache, tmp_path, monkeypatch):
    _, shard = small_cache
    out = tmp_path / "nan"
    train(_options(shard, out, steps=(2, 2)), max_steps=2, device="cpu")
    before = (out / "latest.pt").read_bytes()
    original = Trainer.losses

    def poisoned(self, inputs, generated):
        g_loss, d_loss, logs = original(self, inputs, generated)
        return g_loss * float("nan"), d_loss, logs

    monkeypatch.setattr(Trainer, "losses", poisoned)
    with pytest.raises(NonFiniteLoss, match="step 2: non-finite loss"):
        train(_options(shard, out, steps=(2, 2)), resume=True, device="cpu")
    assert (out / "latest.pt").read_bytes() == before


@pytest.mark.parametrize("poison, message", [("d_loss", "non-finite loss"), ("d_grad", "non-finite gradient of D")])
def test_a_non_finite_discriminator_loss_or_gradient_stops_before_the_weights_change(
        small_cache, tmp_path, monkeypatch, poison, message):
    _, shard = small_cache
    out = tmp_path / poison
    train(_options(shard, out, steps=(2, 2)), max_steps=2, device="cpu")
    before = (out / "latest.pt").read_bytes()
    original = Trainer.losses

    def poisoned(self, inputs, generated):
        g_loss, d_loss, logs = original(self, inputs, generated)
        if poison == "d_loss":
            return g_loss, d_loss * float("inf"), logs
        d_loss.register_hook(lambda grad: grad * float("inf"))  # the loss stays finite, its gradient does not
        return g_loss, d_loss, logs

    monkeypatch.setattr(Trainer, "losses", poisoned)
    with pytest.raises(NonFiniteLoss, match=f"step 2: {message}"):
        train(_options(shard, out, steps=(2, 2)), resume=True, device="cpu")
    assert (out / "latest.pt").read_bytes() == before


def test_first_frame_from_a_single_image_generator(small_cache, tmp_path):
    _, shard = small_cache
    opts = _options(shard, tmp_path / "image", steps=(1, 1), first_frame="image")
    trainer = Trainer(opts, torch.device("cpu"))
    batch = trainer.load_batch(0, 0)
    inputs = trainer.to_inputs(batch)
    generated = trainer.generate(inputs, 0)
    assert generated["start"] == 0 and len(generated["outputs"]) == 4  # every frame generated
    by_time = {out["t"]: out for out in generated["outputs"]}
    assert by_time[0]["flow"] is None and by_time[0]["source"] == "first" and by_time[2]["flow"] is not None
    trainer.train_step(batch, 0)
    assert any(p.grad is not None for p in trainer.first_generator.parameters())


def test_precision_auto_trains_in_bf16_only_where_the_device_has_it(monkeypatch, caplog):
    """bf16 autocast on an AVX2-only CPU is emulated: the demo's frame_by_frame run took 10.4 s a
    step there against 0.44 s in fp32, so 'auto' (the demo's setting) picks fp32 on such a CPU."""
    from pipeline.core import devices

    cpu = torch.device("cpu")
    assert options_mod.from_dict({"train": {"precision": "auto"}}).train.precision == "auto"
    for avx512_bf16, amx, expected in ((False, False, "fp32"), (True, False, "bf16"), (False, True, "bf16")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert devices.resolve_precision("auto", cpu) == expected
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert devices.resolve_precision("bf16", cpu) == "bf16"  # asked for: run as asked, with a warning
    assert "no native bf16" in caplog.text
    trainer = Trainer(options_mod.from_dict({"model": {"ngf": 8, "n_downsample": 2, "n_blocks": 1},
                                             "discriminator": {"temporal_scales": 1},
                                             "train": {"precision": "auto", "first_frame": "real"}}), cpu)
    assert trainer.precision == "fp32" and not torch.is_autocast_enabled("cpu")
    with trainer.autocast():
        assert not torch.is_autocast_enabled("cpu")


def test_options_errors_name_the_option():
    with pytest.raises(options_mod.OptionsError, match=r"model: unknown option\(s\) \['ngff'\]"):
        options_mod.from_dict({"model": {"ngff": 3}})
    with pytest.raises(options_mod.OptionsError, match="uses 2 scales, model.n_local is 0"):
        options_mod.from_dict({"schedule": [{"steps": 1, "scales": 2}]})
    with pytest.raises(options_mod.OptionsError, match="train.precision"):
        options_mod.from_dict({"train": {"precision": "fp8"}})


# ---------------------------------------------------------------- multimodal synthesis

def test_instance_average_and_class_mixtures():
    from model.multimodal import (
        fit_class_gmms,
        instance_average,
        instance_vectors,
        sample_features,
    )

    features = torch.randn(2, 3, 4, 6)
    instances = torch.zeros(2, 4, 6, dtype=torch.long) + 7
    instances[0, :, 3:] = 26000
    instances[1, 1:3, 1:3] = 26000  # same id in another batch element: pooled separately
    pooled = instance_average(features, instances)
    torch.testing.assert_close(pooled[0, :, 0, 5], features[0, :, :, 3:].mean((1, 2)))
    torch.testing.assert_close(pooled[1, :, 2, 2], features[1, :, 1:3, 1:3].mean((1, 2)))
    assert torch.allclose(pooled[0, :, :, :3], pooled[0, :, :1, :1].expand(-1, 4, 3))
    vectors = instance_vectors(pooled, instances)
    assert sorted(vectors) == [7, 26] and len(vectors[26]) == 2
    rng = torch.Generator().manual_seed(0)
    cars = [torch.randn(3, generator=rng).numpy() * 0.01 + c for c in (-0.5, 0.5) for _ in range(20)]
    gmms = fit_class_gmms({26: cars, 7: [v.numpy() for v in torch.zeros(6, 3)]})
    scene = torch.tensor([[[7, 26000, 26001]]])
    sampled = sample_features(scene, gmms, 3, seed=3)
    assert (sampled[0, :, 0, 1].abs() - 0.5).abs().max() < 0.1  # a car vector from one of the two modes
    kept = sample_features(scene, gmms, 3, seed=4, fixed={26000: sampled[0, :, 0, 1].numpy()})
    torch.testing.assert_close(kept[0, :, 0, 1], sampled[0, :, 0, 1])  # one instance fixed, others resampled


def test_trainer_speed_options_and_feature_mixtures_on_cpu(small_cache, tmp_path):
    _, shard = small_cache
    opts = options_mod.from_dict({
        "dataset": "demo", "cache": [str(shard)], "output": str(tmp_path / "fast"),
        "model": {**TINY, "feat_nc": 3}, "loss": {"lambda_vgg": 0},
        "discriminator": {"ndf": 8, "n_layers": 2, "temporal_scales": 1},
        "schedule": [{"steps": 2, "n_frames": 3, "scale": 0.5}],
        "train": {"precision": "bf16", "channels_last": True, "grad_checkpoint": True, "tbptt": 1,
                  "first_frame": "zero", "sample_every": 1}})
    final = torch.load(train(opts, device="cpu"), weights_only=False)
    assert final["step"] == 2 and final["encoder"] is not None
    gmm = final["feature_gmm"]
    assert 26 in gmm and gmm[26]["means"].shape[1] == 3  # cars got a mixture of 3-d features


def test_speed_options_keep_the_steps_losses_and_gradients(small_cache, tmp_path):
    """Gradient checkpointing and channels_last change memory and layout only: the step's losses
    and every weight's gradient are the plain step's. (Checkpointing once recomputed each frame with
    the last frame's labels and network; channels_last at batch 1 gives wrong gradients on the CPU
    in torch 2.14, so the trainer keeps it to CUDA.)"""
    _, shard = small_cache
    runs = {}
    for name, speed in (("plain", {}), ("fast", {"channels_last": True, "grad_checkpoint": True})):
        opts = options_mod.from_dict({
            "dataset": "demo", "cache": [str(shard)], "output": str(tmp_path / name),
            "model": TINY, "loss": {"lambda_vgg": 0},
            "discriminator": {"ndf": 8, "n_layers": 2, "temporal_scales": 1},
            "schedule": [{"steps": 2, "n_frames": 5, "scale": 0.5}],
            "train": {"precision": "fp32", "first_frame": "real", **speed}})
        trainer = Trainer(opts, torch.device("cpu"))
        logs = trainer.train_step(trainer.load_batch(0, 0), 0)
        grads = {n: p.grad for m in (trainer.generator, trainer.image_d, trainer.video_ds)
                 for n, p in m.named_parameters() if p.grad is not None}
        runs[name] = logs, grads
    (plain_logs, plain_grads), (fast_logs, fast_grads) = runs["plain"], runs["fast"]
    assert plain_logs.keys() == fast_logs.keys() and plain_grads.keys() == fast_grads.keys()
    for key in plain_logs:
        assert fast_logs[key] == pytest.approx(plain_logs[key], rel=1e-5, abs=1e-6), key
    for name, grad in plain_grads.items():
        assert (fast_grads[name] - grad).norm() <= 1e-4 * grad.norm() + 1e-9, name


@pytest.mark.slow
def test_ddp_with_two_processes_on_cpu(small_cache, tmp_path):
    """torchrun (gloo on the CPU) with 2 ranks: each trains on its own clips, weights stay in sync."""
    import json
    import subprocess
    import sys

    _, shard = small_cache
    opts = {"dataset": "demo", "cache": [str(shard)], "output": str(tmp_path / "ddp"),
            "model": {**TINY, "n_local": 1}, "loss": {"lambda_vgg": 0},
            "discriminator": {"ndf": 8, "n_layers": 2, "temporal_scales": 1},
            "schedule": [{"steps": 2, "n_frames": 3, "scale": 0.5}, {"steps": 1, "n_frames": 3, "scales": 1}],
            "train": {"max_t_step": 1}}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "pipeline.stages.train", "--options-json", json.dumps(opts), "--device", "cpu"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    final = torch.load(tmp_path / "ddp" / "final.pt", weights_only=False)
    assert final["step"] == 3 and json.loads((tmp_path / "ddp" / "run.json").read_text())["world_size"] == 2


def test_weights_cli_lists_entries_and_explains_a_failed_fetch(tmp_path, capsys):
    from pipeline.tools import fetch_weights as weights_cli

    assert weights_cli.main(["--cache", str(tmp_path), "list"]) == 0
    listing = capsys.readouterr().out
    assert "vgg19" in listing and "missing" in listing and "licence" in listing
    (tmp_path / "vgg19-dcbfe4e1.pth").write_bytes(b"not the weights")
    assert weights_cli.main(["--cache", str(tmp_path), "list"]) == 0
    assert "WRONG HASH" in capsys.readouterr().out
