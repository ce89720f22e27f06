"""Future video prediction (paper section 4): the semantic-map predictor, its training, the floors,
and the predict stage's errors (the whole target runs in tests/test_workflow.py's tiny demo)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from model.frame_predictors import FramePredictorConfig, build, frame_prediction_loss
from model.label_predictor import LabelPredictor, LabelPredictorConfig, prediction_loss
from model.prediction import extrapolate_flow, repeat_last
from model.prediction_trainer import PredictorTrainOptions, load_predictor, train_predictor

TINY = LabelPredictorConfig(observed=3, ngf=8, n_downsample=2, n_blocks=1)


def one_hot_history(batch: int, frames: int, height: int = 32, width: int = 64, seed: int = 0) -> torch.Tensor:
    labels = torch.randint(0, 34, (batch, frames, height, width), generator=torch.Generator().manual_seed(seed))
    return F.one_hot(labels, 34).movedim(-1, 2).float()


def test_predictor_returns_probability_maps_flow_and_mask():
    torch.manual_seed(0)
    model = LabelPredictor(TINY)
    prior = torch.randn(2, 2, 32, 64)
    probs, flow, mask = model(one_hot_history(2, 3), prior)
    assert probs.shape == (2, 34, 32, 64) and flow.shape == (2, 2, 32, 64) and mask.shape == (2, 1, 32, 64)
    torch.testing.assert_close(probs.sum(1), torch.ones(2, 32, 64))  # warped one-hot and softmax mix to 1
    assert 0 <= mask.min() and mask.max() <= 1
    maps, flows = model.rollout(one_hot_history(1, 5), steps=4, last_flow=prior[:1])  # the last 3 of 5, then its own
    assert len(maps) == 4 and maps[-1].shape == (1, 34, 32, 64) and len(flows) == 4
    no_flow = LabelPredictor(LabelPredictorConfig(observed=3, ngf=8, n_downsample=2, n_blocks=1, use_flow=False,
                                                  flow_prior=False))
    assert no_flow(one_hot_history(1, 3))[1] is None
    with pytest.raises(ValueError, match=r"expected \(B, 3, 34, H, W\)"):
        model(one_hot_history(1, 2), prior[:1])
    with pytest.raises(ValueError, match="flow_prior needs the previous step's flow"):
        model(one_hot_history(1, 3))
    with pytest.raises(ValueError, match="flow_prior needs use_flow"):
        LabelPredictorConfig(use_flow=False)


def test_untrained_predictor_carries_the_last_map_along_its_flow_and_beats_copying(small_cache):
    """With flow_prior the untrained network is the constant-motion guess: on synthcity's real maps
    and flows it gets more pixels right than copying the last observed map (without the prior the
    demo's trained predictor was below copying: 91.0% vs 92.1% at +1)."""
    from model.data import ClipDataset
    from model.flow_ops import warp

    _, shard = small_cache
    torch.manual_seed(0)
    model = LabelPredictor(TINY).eval()
    clip = ClipDataset([shard], n_frames=8, flip=False, seed=3, split="train", flows=("flow_backward",))[0]
    labels, flows = clip["labels"][None].long(), clip["flow_backward"][None].float()
    one_hot = F.one_hot(labels, 34).movedim(-1, 2).float()
    with torch.no_grad():
        maps, predicted_flows = model.rollout(one_hot[:, :3], 5, flows[:, 1])  # flow_backward 1: frame 2 -> 1
    torch.testing.assert_close(predicted_flows[0], flows[:, 1])  # the change of the flow starts at 0
    carried = one_hot[:, 2]
    for k, probs in enumerate(maps):
        carried = warp(carried, flows[:, 1])
        assert (probs.argmax(1) == carried.argmax(1)).float().mean() > 0.99, k  # the mask starts near 0
    truth = labels[:, 3:]
    predicted = torch.stack([m.argmax(1) for m in maps], 1)
    right, copied = (predicted == truth).float().mean(), (labels[:, 2:3] == truth).float().mean()
    assert right > copied + 0.01, (float(right), float(copied))


def test_training_lowers_the_loss_and_resumes_to_the_same_weights(small_cache, tmp_path):
    _, shard = small_cache
    opts = PredictorTrainOptions(steps=24, batch_size=1, horizon=1, lr=2e-3, precision="fp32", checkpoint_every=5,
                                 log_every=100)

    def loss_of(model) -> float:
        from model.data import ClipDataset

        clip = ClipDataset([shard], n_frames=4, flip=False, seed=9, split="train", flows=("flow_backward",))[0]
        with torch.no_grad():
            loss, _ = prediction_loss(model, clip["labels"][None], clip["flow_backward"][None].float(),
                                      clip["confidence_backward"][None])
        return float(loss)

    torch.manual_seed(0)
    before = loss_of(LabelPredictor(TINY))  # the trainer's initial weights: the same seed
    final = train_predictor("labels", [str(shard)], tmp_path / "straight", TINY, opts, device="cpu")
    kind, trained, observed = load_predictor(final, torch.device("cpu"))
    assert kind == "labels" and observed == 3
    assert loss_of(trained) < before  # it starts from constant motion, already a good guess
    scratch = dataclasses.replace(TINY, flow_prior=False)  # from nothing: it must learn the motion itself
    torch.manual_seed(0)
    before = loss_of(LabelPredictor(scratch))
    learned = load_predictor(train_predictor("labels", [str(shard)], tmp_path / "scratch", scratch, opts,
                                             device="cpu"), torch.device("cpu"))[1]
    assert loss_of(learned) < 0.8 * before
    # stopped at step 7 (checkpoints at 5 and at the stop), then resumed: the same weights as straight through
    train_predictor("labels", [str(shard)], tmp_path / "resumed", TINY, opts, device="cpu", max_steps=7)
    assert not (tmp_path / "resumed" / "final.pt").exists()
    resumed = load_predictor(train_predictor("labels", [str(shard)], tmp_path / "resumed", TINY, opts, device="cpu"),
                             torch.device("cpu"))[1]
    with pytest.raises(ValueError, match="is not a prednet checkpoint"):
        load_predictor(final, torch.device("cpu"), "prednet")
    for (name, a), b in zip(trained.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_a_predictor_whose_cache_changed_is_trained_again_not_resumed(small_cache, tmp_path, caplog):
    """A finished latest.pt is resumed only while its data and final.pt are what they were."""
    from tests.conftest import copy_with_one_label_changed

    _, shard = small_cache
    cache, out = tmp_path / "cache.safetensors", tmp_path / "labels"
    cache.write_bytes(shard.read_bytes())
    opts = PredictorTrainOptions(steps=2, batch_size=1, horizon=1, precision="fp32", log_every=100)
    train_predictor("labels", [str(cache)], out, TINY, opts, device="cpu")
    train_predictor("labels", [str(cache)], out, TINY, opts, device="cpu")  # final.pt there: kept as it is
    assert not list(out.glob("latest.stale.pt"))
    copy_with_one_label_changed(shard, cache)
    train_predictor("labels", [str(cache)], out, TINY, opts, device="cpu")
    assert "changed: cache" in caplog.text and len(list(out.glob("latest.stale.pt"))) == 1


@pytest.mark.parametrize("kind, factor", [("prednet", 0.8), ("mcnet", 0.95)])  # MCNet starts from the last frame
def test_baselines_predict_frames_and_learn_on_real_clips(kind, factor, small_cache, tmp_path):
    torch.manual_seed(0)
    cfg = FramePredictorConfig(kind=kind, ngf=4, layers=2)
    frames = torch.rand(2, 5, 3, 32, 64) * 2 - 1
    seen, future = build(cfg).rollout(frames[:, :3], 4)
    assert len(future) == 4 and future[0].shape == (2, 3, 32, 64) and future[0].abs().max() <= 1
    assert len(seen) == (2 if kind == "prednet" else 1)  # the predictions of the observed frames it scores
    _, shard = small_cache
    opts = PredictorTrainOptions(steps=20, batch_size=1, horizon=1, lr=3e-3, precision="fp32", crop=(64, 32),
                                 checkpoint_every=100, log_every=100)

    def loss_of(model) -> float:
        from model.data import ClipDataset

        clip = ClipDataset([shard], n_frames=4, flip=False, seed=9, split="train", flows=())[0]
        with torch.no_grad():
            return float(frame_prediction_loss(model, clip["frames"][None].float() / 127.5 - 1, 3)[0])

    torch.manual_seed(0)
    before = loss_of(build(cfg))
    final = train_predictor(kind, [str(shard)], tmp_path / kind, cfg, opts, observed=3, device="cpu")
    assert loss_of(load_predictor(final, torch.device("cpu"), kind)[1]) < factor * before


def test_floors_repeat_the_last_frame_and_carry_it_along_constant_motion():
    x = np.arange(64, dtype=np.float64)
    row = 127.5 + 100 * np.sin(x / 5.0)
    frames = np.stack([np.repeat(np.roll(row, t)[None, :, None], 16, 0).repeat(3, 2) for t in range(3)]).round()
    frames = frames.astype(np.uint8)  # content moves 1 px right per frame
    backward = np.zeros((2, 16, 64), np.float32)
    backward[0] = -1.0  # frame t at x shows frame t-1 at x - 1
    future = extrapolate_flow(frames, backward, 3)
    for k, frame in enumerate(future, start=1):
        expected = np.roll(frames[-1], k, axis=1)
        assert np.abs(frame[:, 8:].astype(int) - expected[:, 8:]).max() <= 1  # away from the left border
    repeated = repeat_last(frames, 2)
    assert len(repeated) == 2 and (repeated[1] == frames[-1]).all()


def test_predict_stage_names_a_sequence_too_short_for_the_window(small_cache, tmp_path):
    _, shard = small_cache  # synthcity sequences of 8 frames
    result = subprocess.run([sys.executable, "-m", "pipeline.stages.predict", "--method", "repeat", "--cache",
                             str(shard), "--observed", "4", "--predicted", "8", "--output", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "synth001_000000 has 8 frames; prediction needs 4 observed + 8 predicted" in result.stderr
    assert str(shard) in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "synthesis.json").exists()


@pytest.mark.slow
def test_data_parallel_training_matches_one_process_on_the_whole_batch(tmp_path):
    """torchrun with 2 ranks (gloo on the CPU), 1 clip each: the gradients of one process on both clips."""
    from conftest import synthcity_cache

    _, shard = synthcity_cache(tmp_path, "demo", [128, 64], synth={"train": 2})  # two different train clips
    script = tmp_path / "train.py"
    script.write_text(
        "import sys, torch\n"
        "from model.label_predictor import LabelPredictorConfig\n"
        "from model.prediction_trainer import PredictorTrainOptions, train_predictor\n"
        "cfg = LabelPredictorConfig(observed=3, ngf=8, n_downsample=2, n_blocks=1)\n"
        "opts = PredictorTrainOptions(steps=1, batch_size=int(sys.argv[3]), horizon=1, precision='fp32')\n"
        "train_predictor('labels', [sys.argv[1]], __import__('pathlib').Path(sys.argv[2]), cfg, opts, device='cpu')\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(script), str(shard), str(tmp_path / "ddp"), "1"], capture_output=True, text=True,
                         timeout=300, env=env)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = subprocess.run([sys.executable, str(script), str(shard), str(tmp_path / "one"), "2"], capture_output=True,
                         text=True, timeout=300, env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    a = torch.load(tmp_path / "ddp" / "final.pt", weights_only=False)
    b = torch.load(tmp_path / "one" / "final.pt", weights_only=False)
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["world_size"] == 2
    # after one step Adam's first moment is (1 - beta1) times the gradient: the averaged gradients of
    # the two ranks must be the one process's gradient of the two clips
    for index, state in b["optimizer"]["state"].items():
        grad_one, grad_ddp = state["exp_avg"], a["optimizer"]["state"][index]["exp_avg"]
        if grad_one.norm() < 1e-4:  # a bias before an instance norm: its true gradient is 0, this is rounding
            continue
        assert (grad_ddp - grad_one).norm() <= 1e-3 * grad_one.norm(), index
