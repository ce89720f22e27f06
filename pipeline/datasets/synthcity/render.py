"""synthcity ray caster: RGB, labelIds, instance ids, depth and exact forward optical flow.

One ray per pixel centre through a pinhole camera (focal ``f``, principal point at the image
centre, pixel (u, v) = (column, row)). The ray meets the analytic street (ground plane, facade
planes with building heights), then every primitive whose projected bounding box covers the pixel
(z-buffer, nearest wins). Ray directions are scaled so that the ray parameter equals camera depth.

Forward flow t -> t+1 is exact: the 3D point seen at pixel p in frame t moves with its object's
motion from t to t+1 (its velocity times its progress, scene.Objects), is projected with camera
t+1, and flow(p) = projection - p; the backward flow t+1 -> t is made the same way from frame t+1
(points moved back, camera t). Sky points are directions at
infinity (only camera rotation moves them). A pixel is marked valid (not occluded, still in view)
when the surface seen at the flow target in frame t+1 is the same instance at the predicted depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.core.cityscapes_labels import ID
from pipeline.datasets.synthcity import scene as sc
from pipeline.datasets.synthcity.textures import Textures

MAX_DISTANCE = 160.0  # primitives farther than this along the view axis are not drawn
NEAR = 0.05


@dataclass
class Frame:
    rgb: np.ndarray  # (H, W, 3) uint8
    label: np.ndarray  # (H, W) uint8 labelIds
    instance: np.ndarray  # (H, W) int32 Cityscapes instance ids
    depth: np.ndarray  # (H, W) float32 camera depth in metres, inf for sky
    points: np.ndarray  # (3, H, W) float32 world point seen (sky: world ray direction)
    obj: np.ndarray  # (H, W) int32 object index, -1 for the static street and sky


def rotation_y(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


class Renderer:
    """Renders the frames of one :class:`~pipeline.datasets.synthcity.scene.Scene`."""

    def __init__(self, scene: sc.Scene) -> None:
        self.scene = scene
        cam = scene.camera
        self.width, self.height, self.focal = cam.width, cam.height, cam.focal
        self.cx, self.cy = (cam.width - 1) / 2.0, (cam.height - 1) / 2.0
        v, u = np.mgrid[0 : cam.height, 0 : cam.width].astype(np.float32)
        self.u, self.v = u, v
        # camera-frame ray directions with z = 1 (x right, y up, z forward)
        self.ray_x = (u - self.cx) / self.focal
        self.ray_y = -(v - self.cy) / self.focal
        self.textures = Textures(scene)
        # a zero velocity row at the end so that obj == -1 (street, sky) indexes "no motion"
        self.velocities = np.vstack([scene.objects.velocity, np.zeros((1, 3))]).astype(np.float32)
        self.instances = np.append(scene.objects.instance, 0).astype(np.int32)
        self.labels = np.append(scene.objects.label, 0).astype(np.uint8)

    # ------------------------------------------------------------------ rays
    def _world_rays(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c, s = np.cos(self.scene.camera.yaw[t]), np.sin(self.scene.camera.yaw[t])
        dx = (c * self.ray_x + s).astype(np.float32)
        dz = (-s * self.ray_x + c).astype(np.float32)
        return dx, self.ray_y, dz

    # ------------------------------------------------------------------ render
    def render(self, t: int) -> Frame:
        H, W = self.height, self.width
        cam = self.scene.camera.position[t].astype(np.float32)
        dx, dy, dz = self._world_rays(t)
        depth = np.full((H, W), np.inf, np.float32)
        label = np.full((H, W), ID["sky"], np.uint8)
        instance = np.full((H, W), ID["sky"], np.int32)
        obj = np.full((H, W), -1, np.int32)
        rgb = np.empty((H, W, 3), np.float32)
        points = np.stack([dx, dy, dz])  # sky keeps its direction

        self._draw_street(cam, dx, dy, dz, depth, label, instance, rgb, points)
        sky = ~np.isfinite(depth)
        rgb[sky] = self.textures.sky(dx[sky], dy[sky], dz[sky])
        self._draw_primitives(t, cam, dx, dy, dz, depth, label, instance, obj, rgb, points)
        out = np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Frame(rgb=out, label=label, instance=instance, depth=depth, points=points, obj=obj)

    def _draw_street(self, cam, dx, dy, dz, depth, label, instance, rgb, points) -> None:
        with np.errstate(divide="ignore", invalid="ignore"):
            t_ground = np.where(dy < -1e-7, -cam[1] / dy, np.inf).astype(np.float32)
            t_facade = np.full_like(t_ground, np.inf)
            building = np.full(t_ground.shape, -1, np.int64)
            which_side = np.zeros(t_ground.shape, np.int8)
            for k, side in enumerate(self.scene.facades):
                toward = dx * np.sign(side.x) > 1e-7
                t_side = np.where(toward, (side.x - cam[0]) / dx, np.inf).astype(np.float32)
                y = cam[1] + t_side * dy
                z = cam[2] + t_side * dz
                idx = np.clip(np.searchsorted(side.starts, z, side="right") - 1, 0, len(side.starts) - 1)
                hit = toward & (y >= 0) & (y < side.heights[idx]) & (t_side < t_facade)
                t_facade = np.where(hit, t_side, t_facade)
                building = np.where(hit, idx, building)
                which_side = np.where(hit, k, which_side)

        ground = np.isfinite(t_ground) & (t_ground <= t_facade)
        facade = np.isfinite(t_facade) & ~ground
        footprint = np.minimum(t_ground, t_facade) / self.focal
        if ground.any():
            tg = t_ground[ground]
            x, z = cam[0] + tg * dx[ground], cam[2] + tg * dz[ground]
            color, lab = self.textures.street(x, z, footprint[ground])
            rgb[ground], label[ground], instance[ground] = color, lab, lab
            depth[ground] = tg
            points[0][ground], points[1][ground], points[2][ground] = x, 0.0, z
        for k, side in enumerate(self.scene.facades):
            mask = facade & (which_side == k)
            if not mask.any():
                continue
            tf = t_facade[mask]
            y, z = cam[1] + tf * dy[mask], cam[2] + tf * dz[mask]
            rgb[mask] = self.textures.facade(side, building[mask], y, z, footprint[mask])
            label[mask] = instance[mask] = ID["building"]
            depth[mask] = tf
            points[0][mask], points[1][mask], points[2][mask] = side.x, y, z

    def _screen_rects(self, t: int, cam: np.ndarray):
        """Pixel rectangles covered by each primitive's bounding box at frame t, and its nearest depth."""
        prims = self.scene.primitives
        shift = self.scene.objects.shift(t)[prims.obj]
        lo, hi = prims.lo + shift, prims.hi + shift
        corners = np.stack(
            [np.where(np.array([i & 1, i & 2, i & 4], bool), hi, lo) for i in range(8)], axis=1
        )  # (n, 8, 3)
        R = rotation_y(self.scene.camera.yaw[t])
        q = (corners - cam) @ R  # camera coordinates (rows of R^T)
        qz = q[..., 2]
        near = qz.min(axis=1)
        far_ok = near < MAX_DISTANCE
        behind = qz.max(axis=1) <= NEAR
        straddle = near <= NEAR
        with np.errstate(divide="ignore", invalid="ignore"):
            u = self.cx + self.focal * q[..., 0] / qz
            v = self.cy - self.focal * q[..., 1] / qz
        rect = np.stack([np.floor(u.min(1)), np.ceil(u.max(1)) + 1, np.floor(v.min(1)), np.ceil(v.max(1)) + 1], 1)
        rect[straddle] = [0, self.width, 0, self.height]
        rect[:, 0:2] = np.clip(rect[:, 0:2], 0, self.width)
        rect[:, 2:4] = np.clip(rect[:, 2:4], 0, self.height)
        visible = far_ok & ~behind & (rect[:, 1] > rect[:, 0]) & (rect[:, 3] > rect[:, 2])
        return rect.astype(np.int64), visible, np.maximum(near, 0), shift

    def _draw_primitives(self, t, cam, dx, dy, dz, depth, label, instance, obj, rgb, points) -> None:
        prims = self.scene.primitives
        if len(prims.kind) == 0:
            return
        rect, visible, near, shift = self._screen_rects(t, cam)
        order = np.argsort(near)
        cx, cy, cz = (float(c) for c in cam)
        for i in order[visible[order]]:
            u0, u1, v0, v1 = rect[i]
            sub = (slice(v0, v1), slice(u0, u1))
            if near[i] >= depth[sub].max():
                continue  # completely hidden behind what is already drawn
            rx, ry, rz = dx[sub], dy[sub], dz[sub]
            kind = prims.kind[i]
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                if kind == sc.BOX:
                    t_hit, normal_of = _box(prims.lo[i] + shift[i], prims.hi[i] + shift[i], (cx, cy, cz), rx, ry, rz)
                elif kind == sc.CYLINDER:
                    c = prims.center[i] + shift[i]
                    t_hit, normal_of = _cylinder(c, prims.radius[i], prims.lo[i, 1] + shift[i, 1],
                                                 prims.hi[i, 1] + shift[i, 1], (cx, cy, cz), rx, ry, rz)
                else:
                    t_hit, normal_of = _sphere(prims.center[i] + shift[i], prims.radius[i], (cx, cy, cz), rx, ry, rz)
            win = t_hit < depth[sub]
            if not win.any():
                continue
            tw = t_hit[win]
            px, py, pz = cx + tw * rx[win], cy + tw * ry[win], cz + tw * rz[win]
            o = prims.obj[i]
            local = np.stack([px, py, pz], 1) - shift[i].astype(np.float32)
            color = self.textures.material(int(prims.material[i]), prims.color[i], local, normal_of(win, px, py, pz))
            depth[sub][win] = tw
            label[sub][win] = self.labels[o]
            instance[sub][win] = self.instances[o]
            obj[sub][win] = o
            rgb[sub][win] = color
            points[0][sub][win], points[1][sub][win], points[2][sub][win] = px, py, pz

    # ------------------------------------------------------------------ flow
    def flow(self, frame: Frame, t: int, target: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact flow from frame t to frame ``target`` (default t+1; t-1 gives the backward flow),
        (2, H, W) float32 pixels, and each point's depth in the target frame."""
        target = t + 1 if target is None else target
        step = np.append(self.scene.objects.step(t, target), 0.0).astype(np.float32)  # obj -1 -> the zero row
        vel = self.velocities[frame.obj] * step[frame.obj][..., None]  # (H, W, 3)
        sky = ~np.isfinite(frame.depth)
        cam1 = self.scene.camera.position[target].astype(np.float32)
        # moving points translate; sky directions do not and ignore the camera position
        d = [frame.points[k] + np.where(sky, 0.0, vel[..., k] - cam1[k]) for k in range(3)]
        c, s = np.cos(self.scene.camera.yaw[target]), np.sin(self.scene.camera.yaw[target])
        qx = c * d[0] - s * d[2]
        qy = d[1]
        qz = s * d[0] + c * d[2]
        safe_qz = np.maximum(qz, NEAR)
        u1 = self.cx + self.focal * qx / safe_qz
        v1 = self.cy - self.focal * qy / safe_qz
        flow = np.stack([u1 - self.u, v1 - self.v]).astype(np.float32)
        depth1 = np.where(sky, np.inf, qz).astype(np.float32)
        return flow, depth1

    def valid_mask(self, frame: Frame, flow: np.ndarray, depth1: np.ndarray, next_frame: Frame) -> np.ndarray:
        """Pixels of ``frame`` whose surface is visible at its flow target in ``next_frame``."""
        u1 = self.u + flow[0]
        v1 = self.v + flow[1]
        inside = (u1 > -0.5) & (u1 < self.width - 0.5) & (v1 > -0.5) & (v1 < self.height - 0.5) & (depth1 > NEAR)
        ui = np.clip(np.rint(u1), 0, self.width - 1).astype(np.int64)
        vi = np.clip(np.rint(v1), 0, self.height - 1).astype(np.int64)
        same_surface = next_frame.instance[vi, ui] == frame.instance
        seen_depth = next_frame.depth[vi, ui]
        sky = ~np.isfinite(depth1)
        with np.errstate(invalid="ignore"):
            depth_ok = sky & ~np.isfinite(seen_depth) | (np.abs(seen_depth - depth1) <= 0.03 * depth1 + 0.05)
        return inside & same_surface & depth_ok


def _box(lo, hi, cam, rx, ry, rz):
    """Slab test against an axis-aligned box; the camera is outside every box."""
    tmins, tmaxs = [], []
    for axis, r in enumerate((rx, ry, rz)):
        inv = 1.0 / np.where(np.abs(r) < 1e-9, 1e-9, r)
        t1 = (lo[axis] - cam[axis]) * inv
        t2 = (hi[axis] - cam[axis]) * inv
        tmins.append(np.minimum(t1, t2))
        tmaxs.append(np.maximum(t1, t2))
    t_near = np.maximum(np.maximum(tmins[0], tmins[1]), tmins[2])
    t_far = np.minimum(np.minimum(tmaxs[0], tmaxs[1]), tmaxs[2])
    t_hit = np.where((t_near <= t_far) & (t_near > NEAR), t_near, np.inf).astype(np.float32)

    def normal_of(win, px, py, pz):
        stacked = np.stack([tmins[0][win], tmins[1][win], tmins[2][win]], 1)
        axis = stacked.argmax(1)
        rays = np.stack([rx[win], ry[win], rz[win]], 1)
        normal = np.zeros_like(rays)
        rows = np.arange(len(axis))
        normal[rows, axis] = -np.sign(rays[rows, axis])
        return normal

    return t_hit, normal_of


def _cylinder(center, radius, y0, y1, cam, rx, ry, rz):
    """Side of a vertical cylinder around (center.x, center.z), between heights y0 and y1."""
    ox, oz = cam[0] - center[0], cam[2] - center[2]
    a = rx * rx + rz * rz
    b = ox * rx + oz * rz
    c = ox * ox + oz * oz - radius * radius
    disc = b * b - a * c
    t = (-b - np.sqrt(np.maximum(disc, 0))) / np.maximum(a, 1e-12)
    y = cam[1] + t * ry
    t_hit = np.where((disc > 0) & (t > NEAR) & (y >= y0) & (y <= y1), t, np.inf).astype(np.float32)

    def normal_of(win, px, py, pz):
        return np.stack([(px - center[0]) / radius, np.zeros_like(px), (pz - center[2]) / radius], 1).astype(np.float32)

    return t_hit, normal_of


def _sphere(center, radius, cam, rx, ry, rz):
    ox, oy, oz = cam[0] - center[0], cam[1] - center[1], cam[2] - center[2]
    a = rx * rx + ry * ry + rz * rz
    b = ox * rx + oy * ry + oz * rz
    c = ox * ox + oy * oy + oz * oz - radius * radius
    disc = b * b - a * c
    t = (-b - np.sqrt(np.maximum(disc, 0))) / a
    t_hit = np.where((disc > 0) & (t > NEAR), t, np.inf).astype(np.float32)

    def normal_of(win, px, py, pz):
        return (np.stack([px - center[0], py - center[1], pz - center[2]], 1) / radius).astype(np.float32)

    return t_hit, normal_of


def render_sequence(scene: sc.Scene, backward: bool = False):
    """Yield (frame, flow, valid) for every frame: the forward flow t -> t+1 and its validity (None
    for the last frame). With ``backward``, yield (frame, flow, valid, back, back_valid), where
    back is the flow t+1 -> t seen from frame t+1 (None for the last frame)."""
    renderer = Renderer(scene)
    n = len(scene.camera.yaw)
    frame = renderer.render(0)
    for t in range(n):
        if t + 1 < n:
            flow, depth1 = renderer.flow(frame, t)
            nxt = renderer.render(t + 1)
            valid = renderer.valid_mask(frame, flow, depth1, nxt)
            if backward:
                back, depth0 = renderer.flow(nxt, t + 1, t)
                yield frame, flow, valid, back, renderer.valid_mask(nxt, back, depth0, frame)
            else:
                yield frame, flow, valid
            frame = nxt
        else:
            yield (frame, None, None, None, None) if backward else (frame, None, None)
