"""Procedural textures and shading for synthcity.

Every texture is a function of a surface point in the object's own frame (or the world frame for
the static street), never of the pixel, so a surface point keeps its colour from frame to frame and
warping by the exact flow reproduces the previous frame (up to sampling). Thin features (lane
markings, tile joints, windows) are anti-aliased analytically from the pixel footprint, which keeps
them from flickering at a distance. Shading is Lambertian with an ambient term (no shadows, no
view-dependent terms: brightness constancy holds exactly).
"""

from __future__ import annotations

import numpy as np

from pipeline.datasets.synthcity import scene as sc

TILE = 256


def noise_tile(seed: int, size: int = TILE, cutoff: float = 0.08) -> np.ndarray:
    """A tileable band-limited value-noise tile in [0, 1] (white noise low-passed in Fourier space)."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft2(rng.standard_normal((size, size)))
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    spectrum *= np.exp(-(fx**2 + fy**2) / (2 * cutoff**2))
    tile = np.fft.irfft2(spectrum, s=(size, size))
    tile = (tile - tile.min()) / (tile.max() - tile.min())
    return tile.astype(np.float32)


def sample(tile: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bilinear, wrapping lookup of ``tile`` at texel coordinates (a, b)."""
    size = tile.shape[0]
    a0 = np.floor(a)
    b0 = np.floor(b)
    fa = (a - a0).astype(np.float32)
    fb = (b - b0).astype(np.float32)
    ia = a0.astype(np.int64) % size
    ib = b0.astype(np.int64) % size
    ia1 = (ia + 1) % size
    ib1 = (ib + 1) % size
    top = tile[ib, ia] * (1 - fa) + tile[ib, ia1] * fa
    bottom = tile[ib1, ia] * (1 - fa) + tile[ib1, ia1] * fa
    return top * (1 - fb) + bottom * fb


def coverage(distance: np.ndarray, half_width: float, footprint: np.ndarray) -> np.ndarray:
    """Fraction of a pixel of size ``footprint`` covered by a stripe |d| < half_width."""
    return np.clip((half_width - np.abs(distance)) / np.maximum(footprint, 1e-6) + 0.5, 0.0, 1.0)


def stripe_distance(coord: np.ndarray, period: float) -> np.ndarray:
    """Distance to the nearest multiple of ``period``."""
    return coord - period * np.round(coord / period)


def lambert(albedo: np.ndarray, normal: np.ndarray, palette: sc.Palette) -> np.ndarray:
    """albedo (..., 3) lit by the sun (normal (..., 3))."""
    diffuse = np.clip(normal @ palette.light_dir.astype(np.float32), 0.0, 1.0)
    light = palette.ambient + (1.0 - palette.ambient) * diffuse
    return albedo * light[..., None] * palette.light_color.astype(np.float32)


class Textures:
    """Colours for the street, the facades, the sky and the object materials of one scene."""

    def __init__(self, scene: sc.Scene) -> None:
        self.scene = scene
        self.palette = scene.palette
        self.fine = noise_tile(scene.noise_seed)
        self.coarse = noise_tile(scene.noise_seed + 1, cutoff=0.02)

    def street(self, x: np.ndarray, z: np.ndarray, footprint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Colour and labelId of ground points (x, z); footprint = metres per pixel."""
        p = self.palette
        half = self.scene.road_half_width
        on_road = np.abs(x) < half
        grain = sample(self.fine, x * 24.0, z * 24.0)
        stains = sample(self.coarse, x * 3.0, z * 3.0)
        shade = (0.8 + 0.25 * grain + 0.2 * (stains - 0.5))[:, None]
        color = np.where(on_road[:, None], p.asphalt.astype(np.float32), p.sidewalk.astype(np.float32)) * shade
        # lane markings on the road
        footprint_z = footprint * 4.0  # ground seen at a grazing angle: longer footprint along z
        marks = coverage(x, 0.08, footprint)  # centre line
        dashes = coverage(stripe_distance(z, 9.0), 1.5, footprint_z)
        for lane_x in (sc.LANE_WIDTH, -sc.LANE_WIDTH):
            marks = np.maximum(marks, coverage(x - lane_x, 0.07, footprint) * dashes)
        for edge_x in (half - 0.15, -half + 0.15):
            marks = np.maximum(marks, coverage(x - edge_x, 0.08, footprint))
        marks *= on_road
        # sidewalk tiles: dark joints on a 1 m grid
        joints = np.maximum(
            coverage(stripe_distance(x, self.scene.sidewalk_tile), 0.02, footprint),
            coverage(stripe_distance(z, self.scene.sidewalk_tile), 0.02, footprint_z),
        ) * ~on_road
        color = color * (1 - 0.35 * joints[:, None])
        color = color * (1 - marks[:, None]) + p.marking.astype(np.float32) * marks[:, None]
        label = np.where(on_road, 7, 8).astype(np.uint8)
        return lambert(color, np.array([0, 1, 0], np.float32), p), label

    def facade(self, side: sc.Facades, index: np.ndarray, y: np.ndarray, z: np.ndarray,
               footprint: np.ndarray) -> np.ndarray:
        """Colour of facade points at height y and position z of building ``index``."""
        base = side.colors[index].astype(np.float32)
        pitch = side.window_pitch[index].astype(np.float32)
        grain = sample(self.fine, z * 10.0, y * 10.0)
        base = base * (0.88 + 0.2 * grain)[:, None]
        wz = coverage(stripe_distance(z / pitch[:, 0] - 0.5, 1.0) * pitch[:, 0], 0.28 * pitch[:, 0], footprint)
        wy = coverage(stripe_distance(y / pitch[:, 1] - 0.5, 1.0) * pitch[:, 1], 0.25 * pitch[:, 1], footprint)
        window = wz * wy * (y > 2.2)
        color = base * (1 - window[:, None]) + side.window_colors[index].astype(np.float32) * window[:, None]
        normal = np.array([-np.sign(side.x), 0, 0], np.float32)
        return lambert(color, normal, self.palette)

    def sky(self, dx: np.ndarray, dy: np.ndarray, dz: np.ndarray) -> np.ndarray:
        """Colour of the sky in world directions (dx, dy, dz): a gradient plus clouds at infinity."""
        p = self.palette
        norm = np.sqrt(dx * dx + dy * dy + dz * dz)
        elevation = np.clip(dy / norm, 0.0, 1.0)
        t = np.sqrt(elevation)[:, None]
        color = p.sky_horizon.astype(np.float32) * (1 - t) + p.sky_top.astype(np.float32) * t
        up = np.maximum(dy, 1e-3)
        clouds = sample(self.coarse, dx / up * 40.0, dz / up * 40.0)
        amount = (np.clip((clouds - (1 - p.cloudiness)) * 3.0, 0, 1) * np.clip(elevation * 8, 0, 1))[:, None]
        return color * (1 - amount) + np.float32(0.95) * amount

    def material(self, material: int, albedo: np.ndarray, local: np.ndarray, normal: np.ndarray) -> np.ndarray:
        """Colour of object surface points: ``local`` (n, 3) in the object's frame, ``normal`` (n, 3)."""
        x, y, z = local[:, 0], local[:, 1], local[:, 2]
        a, b = x + z, y + 0.5 * (x - z)
        albedo = np.broadcast_to(albedo.astype(np.float32), local.shape)
        if material == sc.FOLIAGE:
            color = albedo * (0.45 + 1.1 * sample(self.fine, a * 20.0, b * 20.0))[:, None]
        elif material == sc.GLASS:
            reflect = np.clip(0.5 + 0.5 * normal[:, 1:2], 0, 1)
            color = 0.08 + 0.12 * albedo + 0.18 * reflect * self.palette.sky_horizon.astype(np.float32)
            return color.astype(np.float32)  # glass: no diffuse lighting
        elif material in (sc.BARK, sc.CLOTH, sc.PAINT):
            strength = {sc.BARK: 0.4, sc.CLOTH: 0.2, sc.PAINT: 0.08}[material]
            color = albedo * (1 - strength / 2 + strength * sample(self.fine, a * 16.0, b * 16.0))[:, None]
        else:
            color = albedo
        return lambert(color, normal, self.palette)
