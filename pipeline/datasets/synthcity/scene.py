"""synthcity scene description: a street, a camera path and moving objects, drawn from one seed.

World frame: x to the right of the street, y up, z along the street (metres). The street runs
along z: lanes for both directions, sidewalks, building facades at ``x = +-facade_x``. Objects
(cars, trucks, buses, pedestrians, cyclists, trees, poles with signs and traffic lights) are
unions of primitives (axis-aligned boxes, vertical cylinders, spheres) that translate along a
velocity, so every surface point's 3D motion between two frames is known exactly; ``render.py``
turns that into exact forward optical flow.

``motion`` says how things move. ``even`` (the demo): the camera and every object at a constant
speed, the camera's heading swaying slowly; carrying the last frame along its flow predicts the
next frames almost exactly. ``varied`` (for future prediction, which must have something to
predict): the same street, then the camera stops and goes, its view turns, and every lane of
cars, each cyclist and each pedestrian changes speed on its own (stop-and-go profiles, see
:func:`stop_and_go`); a point's position at frame t is its start plus ``velocity * progress[t]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.core.cityscapes_labels import ID

BOX, CYLINDER, SPHERE = 0, 1, 2

# materials (see textures.py)
PAINT, GLASS, FOLIAGE, BARK, METAL, SIGN, CLOTH, SKIN, LIGHT_HOUSING = range(9)

LANE_WIDTH = 3.5
MOTIONS = ("even", "varied")


@dataclass
class Palette:
    sky_top: np.ndarray
    sky_horizon: np.ndarray
    light_dir: np.ndarray  # unit vector towards the sun
    light_color: np.ndarray
    ambient: float
    asphalt: np.ndarray
    sidewalk: np.ndarray
    marking: np.ndarray
    cloudiness: float


@dataclass
class Facades:
    """Building segments along one side: [z_start, z_end) with a height and appearance each."""

    x: float
    starts: np.ndarray  # (n,) sorted
    heights: np.ndarray  # (n,)
    colors: np.ndarray  # (n, 3) albedo
    window_colors: np.ndarray  # (n, 3)
    window_pitch: np.ndarray  # (n, 2) horizontal, vertical spacing (m)


@dataclass
class Primitives:
    """All primitives of a scene as arrays (struct of arrays); positions at frame 0."""

    kind: np.ndarray  # (n,) BOX / CYLINDER / SPHERE
    obj: np.ndarray  # (n,) owning object index
    lo: np.ndarray  # (n, 3) box min corner / bounding-box min for others
    hi: np.ndarray  # (n, 3)
    center: np.ndarray  # (n, 3) cylinder axis point (y unused) or sphere centre
    radius: np.ndarray  # (n,)
    material: np.ndarray  # (n,)
    color: np.ndarray  # (n, 3) albedo in [0, 1]


@dataclass
class Objects:
    label: np.ndarray  # (m,) Cityscapes labelId
    instance: np.ndarray  # (m,) instance id in the Cityscapes encoding
    velocity: np.ndarray  # (m, 3) metres per frame at full speed
    #: (m, T) how far along its velocity each object is at frame t, in frames at full speed (the
    #: ``even`` motion: t itself); None = t
    progress: np.ndarray | None = None

    def shift(self, t: int) -> np.ndarray:
        """(m, 3) each object's displacement at frame t from where it starts."""
        return self.velocity * (t if self.progress is None else self.progress[:, t][:, None])

    def step(self, t: int, target: int) -> np.ndarray:
        """(m,) how many frames at full speed each object moves from frame t to ``target``."""
        if self.progress is None:
            return np.full(len(self.velocity), float(target - t))
        return self.progress[:, target] - self.progress[:, t]


@dataclass
class CameraPath:
    position: np.ndarray  # (T, 3)
    yaw: np.ndarray  # (T,) radians, positive turns towards +x
    focal: float  # pixels
    width: int
    height: int


@dataclass
class Scene:
    palette: Palette
    facades: tuple[Facades, Facades]
    road_half_width: float
    primitives: Primitives
    objects: Objects
    camera: CameraPath
    noise_seed: int
    sidewalk_tile: float = 1.0
    lane_xs: tuple[float, ...] = field(default_factory=tuple)


class _Builder:
    """Collects objects and their primitives while the scene is laid out."""

    def __init__(self) -> None:
        self.prims: list[tuple] = []
        self.labels: list[int] = []
        self.instances: list[int] = []
        self.velocities: list[np.ndarray] = []
        self._next_k: dict[int, int] = {}

    def add_object(self, label: int, velocity=(0.0, 0.0, 0.0), thing: bool = True) -> int:
        if thing:
            k = self._next_k.get(label, 0)
            self._next_k[label] = k + 1
            instance = label * 1000 + k
        else:
            instance = label
        self.labels.append(label)
        self.instances.append(instance)
        self.velocities.append(np.asarray(velocity, dtype=np.float64))
        return len(self.labels) - 1

    def box(self, obj, lo, hi, material, color):
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        self.prims.append((BOX, obj, lo, hi, (lo + hi) / 2, 0.0, material, color))

    def cylinder(self, obj, x, z, radius, y0, y1, material, color):
        lo = np.array([x - radius, y0, z - radius])
        hi = np.array([x + radius, y1, z + radius])
        self.prims.append((CYLINDER, obj, lo, hi, np.array([x, (y0 + y1) / 2, z]), radius, material, color))

    def sphere(self, obj, center, radius, material, color):
        c = np.asarray(center, float)
        self.prims.append((SPHERE, obj, c - radius, c + radius, c, radius, material, color))

    def build(self) -> tuple[Primitives, Objects]:
        cols = list(zip(*self.prims)) if self.prims else [[]] * 8
        prims = Primitives(
            kind=np.array(cols[0], dtype=np.int8),
            obj=np.array(cols[1], dtype=np.int32),
            lo=np.array(cols[2], dtype=np.float64).reshape(-1, 3),
            hi=np.array(cols[3], dtype=np.float64).reshape(-1, 3),
            center=np.array(cols[4], dtype=np.float64).reshape(-1, 3),
            radius=np.array(cols[5], dtype=np.float64),
            material=np.array(cols[6], dtype=np.int8),
            color=np.array(cols[7], dtype=np.float64).reshape(-1, 3),
        )
        objects = Objects(
            label=np.array(self.labels, dtype=np.int32),
            instance=np.array(self.instances, dtype=np.int32),
            velocity=np.array(self.velocities, dtype=np.float64).reshape(-1, 3),
        )
        return prims, objects


CAR_COLORS = np.array(
    [[0.75, 0.75, 0.78], [0.1, 0.1, 0.12], [0.55, 0.05, 0.05], [0.1, 0.2, 0.5], [0.9, 0.9, 0.88],
     [0.35, 0.38, 0.4], [0.2, 0.35, 0.2], [0.7, 0.55, 0.2], [0.5, 0.5, 0.55]]
)
FACADE_COLORS = np.array(
    [[0.72, 0.64, 0.52], [0.6, 0.45, 0.35], [0.78, 0.76, 0.7], [0.55, 0.55, 0.58], [0.7, 0.5, 0.4],
     [0.82, 0.78, 0.62], [0.45, 0.42, 0.4], [0.65, 0.68, 0.72]]
)
CLOTH_COLORS = np.array(
    [[0.15, 0.15, 0.2], [0.6, 0.1, 0.1], [0.1, 0.3, 0.6], [0.8, 0.8, 0.75], [0.3, 0.25, 0.2],
     [0.2, 0.45, 0.25], [0.7, 0.6, 0.2]]
)


def _palette(rng: np.random.Generator) -> Palette:
    mood = rng.choice(["clear", "overcast", "evening"], p=[0.5, 0.3, 0.2])
    if mood == "clear":
        sky_top, sky_horizon = np.array([0.25, 0.45, 0.8]), np.array([0.7, 0.82, 0.95])
        light_color, ambient, cloud = np.array([1.0, 0.97, 0.9]), 0.35, 0.25
    elif mood == "overcast":
        sky_top, sky_horizon = np.array([0.55, 0.58, 0.62]), np.array([0.8, 0.81, 0.83])
        light_color, ambient, cloud = np.array([0.85, 0.86, 0.88]), 0.6, 0.6
    else:
        sky_top, sky_horizon = np.array([0.3, 0.3, 0.55]), np.array([0.95, 0.6, 0.4])
        light_color, ambient, cloud = np.array([1.0, 0.75, 0.55]), 0.3, 0.35
    jitter = lambda c: np.clip(c + rng.normal(0, 0.03, 3), 0, 1)  # noqa: E731
    elevation = rng.uniform(0.35, 1.0) if mood != "evening" else rng.uniform(0.12, 0.3)
    azimuth = rng.uniform(0, 2 * np.pi)
    light_dir = np.array([np.cos(azimuth) * np.cos(elevation), np.sin(elevation), np.sin(azimuth) * np.cos(elevation)])
    return Palette(
        sky_top=jitter(sky_top),
        sky_horizon=jitter(sky_horizon),
        light_dir=light_dir / np.linalg.norm(light_dir),
        light_color=light_color,
        ambient=ambient,
        asphalt=jitter(np.full(3, rng.uniform(0.22, 0.38))),
        sidewalk=jitter(np.array([0.62, 0.6, 0.56]) * rng.uniform(0.85, 1.1)),
        marking=np.array([0.92, 0.92, 0.9]),
        cloudiness=cloud,
    )


def _facades(rng: np.random.Generator, x: float, z0: float, z1: float) -> Facades:
    starts, z = [], z0
    while z < z1:
        starts.append(z)
        z += rng.uniform(8.0, 22.0)
    n = len(starts)
    return Facades(
        x=x,
        starts=np.array(starts),
        heights=rng.uniform(7.0, 28.0, n),
        colors=FACADE_COLORS[rng.integers(0, len(FACADE_COLORS), n)] * rng.uniform(0.85, 1.1, (n, 1)),
        window_colors=np.clip(np.array([0.12, 0.15, 0.2]) + rng.normal(0, 0.05, (n, 3)), 0, 1),
        window_pitch=np.stack([rng.uniform(2.2, 3.5, n), rng.uniform(2.8, 3.6, n)], axis=1),
    )


def _add_car(b: _Builder, rng, x, z, vz, kind: str = "car") -> None:
    """A car, truck or bus at (x, z) driving with velocity ``vz`` along the street. The three differ
    in shape as their Cityscapes classes do, so a segmenter can tell them apart from any side: a car
    is a low body with a glass cabin; a truck a cab with a windscreen in front of a taller, windowless
    cargo box (light, as most are); a bus one long box with a band of side windows, a tall
    windscreen and a rear window."""
    if kind == "car":
        label, length, width, body_h, cabin_h = ID["car"], rng.uniform(3.8, 4.8), rng.uniform(1.7, 1.95), 1.0, 0.55
    elif kind == "truck":
        label, length, width, body_h, cabin_h = ID["truck"], rng.uniform(6.0, 8.0), 2.4, 2.8, 0.0
    else:
        label, length, width, body_h, cabin_h = ID["bus"], rng.uniform(10.0, 12.0), 2.5, 3.0, 0.0
    obj = b.add_object(label, (0.0, 0.0, vz))
    color = CAR_COLORS[rng.integers(0, len(CAR_COLORS))]
    w, l2 = width / 2, length / 2
    front = np.sign(vz) if vz != 0 else 1.0
    b.box(obj, (x - w * 0.9, 0.0, z - l2 * 0.8), (x + w * 0.9, 0.35, z + l2 * 0.8), METAL, np.full(3, 0.08))  # wheels
    if kind == "car":
        b.box(obj, (x - w, 0.35, z - l2), (x + w, body_h, z + l2), PAINT, color)
        cz = z - front * l2 * 0.12
        b.box(obj, (x - w * 0.85, body_h, cz - l2 * 0.5), (x + w * 0.85, body_h + cabin_h, cz + l2 * 0.5), GLASS, color)
    elif kind == "truck":
        _truck_body(b, obj, x, z, w, l2, front, color)
    else:
        _bus_body(b, obj, x, z, w, l2, body_h, front, color)


def _span(a: float, b: float) -> tuple[float, float]:
    return min(a, b), max(a, b)


def _truck_body(b: _Builder, obj, x, z, w, l2, front, color) -> None:
    """A 2 m cab (painted, windscreen and side windows) ahead of a 3.3 m high cargo box."""
    nose, tail = z + front * l2, z - front * l2
    cab = _span(nose, nose - front * 2.0)
    b.box(obj, (x - w * 0.95, 0.35, cab[0]), (x + w * 0.95, 2.6, cab[1]), PAINT, color)
    screen = _span(nose + front * 0.03, nose - front * 0.3)
    b.box(obj, (x - w * 0.85, 1.5, screen[0]), (x + w * 0.85, 2.45, screen[1]), GLASS, color)
    side = _span(nose - front * 0.2, nose - front * 1.4)
    b.box(obj, (x - w * 0.97, 1.5, side[0]), (x + w * 0.97, 2.35, side[1]), GLASS, color)
    cargo = _span(nose - front * 2.1, tail)
    b.box(obj, (x - w, 0.5, cargo[0]), (x + w, 3.3, cargo[1]), PAINT, 0.8 + 0.15 * color)


def _bus_body(b: _Builder, obj, x, z, w, l2, body_h, front, color) -> None:
    """A long box with side windows, a windscreen from 0.9 m up and a rear window."""
    b.box(obj, (x - w, 0.35, z - l2), (x + w, 0.35 + body_h, z + l2), PAINT, color)
    b.box(obj, (x - w * 1.01, body_h * 0.6, z - l2 * 0.95), (x + w * 1.01, body_h * 0.85, z + l2 * 0.95), GLASS, color)
    nose, tail = z + front * l2, z - front * l2
    screen = _span(nose + front * 0.03, nose - front * 0.3)
    b.box(obj, (x - w * 0.92, 0.9, screen[0]), (x + w * 0.92, body_h * 0.9, screen[1]), GLASS, color)
    rear = _span(tail - front * 0.03, tail + front * 0.3)
    b.box(obj, (x - w * 0.8, body_h * 0.6, rear[0]), (x + w * 0.8, body_h * 0.85, rear[1]), GLASS, color)


def _add_pedestrian(b: _Builder, rng, x, z, vz) -> None:
    obj = b.add_object(ID["person"], (0.0, 0.0, vz))
    h = rng.uniform(0.9, 1.1)
    cloth = CLOTH_COLORS[rng.integers(0, len(CLOTH_COLORS))]
    legs = CLOTH_COLORS[rng.integers(0, len(CLOTH_COLORS))] * 0.7
    b.box(obj, (x - 0.18, 0.0, z - 0.12), (x + 0.18, 0.85 * h, z + 0.12), CLOTH, legs)
    b.box(obj, (x - 0.24, 0.85 * h, z - 0.15), (x + 0.24, 1.45 * h, z + 0.15), CLOTH, cloth)
    b.sphere(obj, (x, 1.58 * h, z), 0.13 * h, SKIN, np.array([0.85, 0.65, 0.5]) * rng.uniform(0.5, 1.1))


def _add_cyclist(b: _Builder, rng, x, z, vz, legs_rng=None) -> None:
    """A rider on a bicycle, as Cityscapes draws them: two wheels, a frame and handlebars (the
    bicycle); a torso leaning towards the handlebars, arms reaching them, legs down to the pedals
    and a head (the rider). ``legs_rng`` draws the trousers' colour (default: ``rng``)."""
    front = np.sign(vz) if vz != 0 else 1.0
    bike = b.add_object(ID["bicycle"], (0.0, 0.0, vz))
    metal = np.array([0.2, 0.2, 0.25])
    wheel_front, wheel_rear, r = z + front * 0.52, z - front * 0.52, 0.34
    for wz in (wheel_front, wheel_rear):
        b.box(bike, (x - 0.03, 0.0, wz - r), (x + 0.03, 2 * r, wz + r), METAL, np.full(3, 0.08))
    b.box(bike, (x - 0.025, 0.62, z - 0.42), (x + 0.025, 0.7, z + 0.42), METAL, metal)  # top tube
    seat = z - front * 0.25
    b.box(bike, (x - 0.025, r, seat - 0.04), (x + 0.025, 0.92, seat + 0.04), METAL, metal)  # seat tube
    head = wheel_front - front * 0.08
    b.box(bike, (x - 0.025, r, head - 0.04), (x + 0.025, 1.0, head + 0.04), METAL, metal)  # fork, head tube
    b.box(bike, (x - 0.28, 0.98, head - 0.03), (x + 0.28, 1.04, head + 0.03), METAL, metal)  # handlebars
    rider = b.add_object(ID["rider"], (0.0, 0.0, vz))
    cloth = CLOTH_COLORS[rng.integers(0, len(CLOTH_COLORS))]
    legs = CLOTH_COLORS[(legs_rng or rng).integers(0, len(CLOTH_COLORS))] * 0.7
    # legs: one pedal forward and down, the other up and back
    down, up = _span(seat, seat + front * 0.3), _span(seat - front * 0.05, seat + front * 0.25)
    b.box(rider, (x - 0.17, 0.2, down[0]), (x - 0.05, 0.92, down[1]), CLOTH, legs)
    b.box(rider, (x + 0.05, 0.45, up[0]), (x + 0.17, 0.92, up[1]), CLOTH, legs)
    torso = _span(seat - front * 0.12, seat + front * 0.3)
    b.box(rider, (x - 0.21, 0.92, torso[0]), (x + 0.21, 1.5, torso[1]), CLOTH, cloth)
    upper_arm = _span(seat + front * 0.2, seat + front * 0.5)
    fore_arm = _span(seat + front * 0.45, head)
    for side in (-1.0, 1.0):
        ax = sorted((x + side * 0.2, x + side * 0.28))
        b.box(rider, (ax[0], 1.2, upper_arm[0]), (ax[1], 1.42, upper_arm[1]), CLOTH, cloth)
        b.box(rider, (ax[0], 1.02, fore_arm[0]), (ax[1], 1.22, fore_arm[1]), SKIN, np.array([0.8, 0.6, 0.45]))
    b.sphere(rider, (x, 1.64, seat + front * 0.25), 0.12, SKIN, np.array([0.8, 0.6, 0.45]))


def _add_tree(b: _Builder, rng, x, z) -> None:
    trunk = b.add_object(ID["vegetation"], thing=False)
    height = rng.uniform(2.5, 4.0)
    b.cylinder(trunk, x, z, rng.uniform(0.12, 0.22), 0.0, height, BARK, np.array([0.35, 0.25, 0.15]))
    r = rng.uniform(1.3, 2.4)
    green = np.array([0.2, 0.38, 0.12]) * rng.uniform(0.7, 1.3)
    b.sphere(trunk, (x, height + r * 0.6, z), r, FOLIAGE, green)


def _add_pole(b: _Builder, rng, x, z, side: float) -> None:
    pole = b.add_object(ID["pole"], thing=False)
    height = rng.uniform(3.0, 5.5)
    b.cylinder(pole, x, z, 0.07, 0.0, height, METAL, np.array([0.45, 0.45, 0.47]))
    if rng.random() < 0.5:
        sign = b.add_object(ID["traffic sign"], thing=False)
        color = [np.array([0.75, 0.1, 0.1]), np.array([0.1, 0.25, 0.7]), np.array([0.9, 0.75, 0.1])][rng.integers(0, 3)]
        b.box(sign, (x - 0.35, height - 0.9, z - 0.04), (x + 0.35, height - 0.2, z + 0.04), SIGN, color)
    else:
        light = b.add_object(ID["traffic light"], thing=False)
        ox = -side * 0.3
        b.box(light, (x + ox - 0.16, height - 1.0, z - 0.16), (x + ox + 0.16, height, z + 0.16), LIGHT_HOUSING,
              np.array([0.12, 0.12, 0.1]))


def _camera_path(rng: np.random.Generator, num_frames: int, width: int, height: int, lane_x: float,
                 camera_speed: tuple[float, float], yaw_amplitude_deg: float) -> tuple[CameraPath, float]:
    """The camera: forward along +z in the inner same-direction lane, slight yaw and lateral sway;
    returns the path and its speed (metres a frame)."""
    speed = rng.uniform(*camera_speed)
    t = np.arange(num_frames, dtype=np.float64)
    phase = rng.uniform(0, 2 * np.pi)
    period = rng.uniform(40, 90)
    yaw = np.deg2rad(yaw_amplitude_deg) * np.sin(2 * np.pi * t / period + phase)
    lateral = 0.3 * np.sin(2 * np.pi * t / period + phase - 0.5)
    position = np.stack([lane_x + lateral, np.full_like(t, rng.uniform(1.3, 1.7)), speed * t], axis=1)
    return CameraPath(position=position, yaw=yaw, focal=0.8 * width, width=width, height=height), speed


def _add_street_furniture(b: _Builder, rng, road_half: float, near: float, far: float) -> None:
    """Trees and poles along both sidewalks."""
    for side in (-1.0, 1.0):
        z = near + rng.uniform(0, 8)
        while z < far:
            if rng.random() < 0.55:
                _add_tree(b, rng, side * (road_half + rng.uniform(0.8, 1.4)), z)
            else:
                _add_pole(b, rng, side * (road_half + 0.4), z, side)
            z += rng.uniform(7.0, 16.0)


def _add_traffic(b: _Builder, rng, speed: float, lanes_same, lanes_oncoming, near: float, far: float) -> None:
    """The lead car, slower/faster cars in the outer lane, oncoming cars. Cars in one lane share the
    lane's speed (a little jitter), so they never drive through each other."""
    def vehicle_kind():
        return rng.choice(["car", "truck", "bus"], p=[0.82, 0.1, 0.08])

    _add_car(b, rng, lanes_same[0], rng.uniform(14, 30), speed * rng.uniform(0.9, 1.1), "car")
    outer_speed = speed * rng.uniform(0.5, 1.7)  # faster than the camera: cars overtake from behind
    z = rng.uniform(-30, -8) if outer_speed > speed else rng.uniform(5, 20)
    while z < far:
        _add_car(b, rng, lanes_same[1] + rng.normal(0, 0.1), z, outer_speed + rng.uniform(-0.01, 0.01), vehicle_kind())
        z += rng.uniform(16, 40)
    for lane in lanes_oncoming:
        lane_speed = -rng.uniform(0.3, 0.9)
        z = near + rng.uniform(0, 20)
        while z < far + 40:
            _add_car(b, rng, lane + rng.normal(0, 0.1), z, lane_speed + rng.uniform(-0.01, 0.01), vehicle_kind())
            z += rng.uniform(16, 45)


def _add_cyclists(b: _Builder, rng, seed: int, road_half: float, speed: float, far: float) -> None:
    """Cyclists at the kerb, overtaken by the camera and oncoming; their own generator draws all but
    the first ones' positions, so adding them leaves every other object where it was."""
    more = np.random.default_rng([seed, 1])
    for _ in range(rng.integers(0, 3)):
        _add_cyclist(b, rng, road_half - 0.6, rng.uniform(5, 60), speed * rng.uniform(0.3, 0.6), more)
    for _ in range(more.integers(0, 3)):
        _add_cyclist(b, more, road_half - 0.6, more.uniform(5, 80), speed * more.uniform(0.3, 0.6))
    for _ in range(more.integers(1, 4)):
        _add_cyclist(b, more, -road_half + 0.6, more.uniform(10, far), -more.uniform(0.15, 0.35))


def _add_pedestrians(b: _Builder, rng, road_half: float, sidewalk_w: float, near: float, far: float) -> None:
    """Pedestrians walking along both sidewalks."""
    for side in (-1.0, 1.0):
        z = near + rng.uniform(0, 6)
        while z < far:
            x = side * (road_half + rng.uniform(1.6, sidewalk_w - 0.4))
            _add_pedestrian(b, rng, x, z, rng.choice([-1, 1]) * rng.uniform(0.04, 0.1))
            z += rng.uniform(4.0, 18.0)


def stop_and_go(rng: np.random.Generator, num_frames: int, top: float) -> np.ndarray:
    """(T,) speed factors of one mover: a new target speed in [0, ``top``] (a third of them a
    stop) every 4 to 9 frames, reached over 3 frames along a cosine ramp; it starts at a random
    speed. Its cumulative sum is the mover's progress (:class:`Objects`)."""
    factors = np.empty(num_frames)
    level = rng.uniform(0.2, top)
    t = 0
    while t < num_frames:
        hold = int(rng.integers(4, 10))
        nxt = 0.0 if rng.random() < 1 / 3 else rng.uniform(0.2, top)
        ramp = level + (nxt - level) * (1 - np.cos(np.pi * np.arange(1, 4) / 3)) / 2
        segment = np.concatenate([np.full(hold, level), ramp])
        factors[t : t + len(segment)] = segment[: num_frames - t]
        t, level = t + len(segment), nxt
    return factors


def progress_of(factors: np.ndarray) -> np.ndarray:
    """Progress at each frame (frames at full speed) from per-frame speed factors: 0 at frame 0."""
    return np.concatenate([[0.0], np.cumsum(factors[:-1])])


def _vary_motion(rng: np.random.Generator, scene: Scene, speed: float, lanes_same, lanes_oncoming) -> None:
    """The ``varied`` motion over an ``even`` scene: the camera stops and goes (never faster than
    its even speed, so the street laid out for it still reaches ahead) and its view turns by up to
    15 degrees and back; the lead car in the camera's lane keeps the camera's profile (the camera
    follows it), the cars of each other lane share one profile (they never drive into each other),
    each pedestrian and cyclist has its own."""
    cam, objects, prims = scene.camera, scene.objects, scene.primitives
    num_frames = len(cam.yaw)
    camera = stop_and_go(rng, num_frames, 1.0)
    cam.position[:, 2] = cam.position[0, 2] + speed * progress_of(camera)
    turn_at, turn_len = int(rng.integers(1, max(2, num_frames // 2))), int(rng.integers(4, 9))
    angle = np.deg2rad(rng.uniform(6.0, 15.0)) * rng.choice([-1.0, 1.0])
    ramp = np.clip((np.arange(num_frames) - turn_at) / turn_len, 0, 1)
    back = np.clip((np.arange(num_frames) - turn_at - turn_len - int(rng.integers(3, 8))) / turn_len, 0, 1)
    cam.yaw += angle * (1 - np.cos(np.pi * (ramp - back))) / 2
    progress = np.tile(np.arange(num_frames, dtype=np.float64), (len(objects.label), 1))
    x_of = np.full(len(objects.label), np.nan)
    for o in range(len(objects.label)):
        x_of[o] = prims.center[prims.obj == o, 0].mean() if (prims.obj == o).any() else np.nan
    lane_profiles: dict[float, np.ndarray] = {}
    vehicles = {ID["car"], ID["truck"], ID["bus"]}
    for o in np.flatnonzero(np.abs(objects.velocity).sum(1) > 0):
        if objects.label[o] in vehicles:
            lane = min(lanes_same + lanes_oncoming, key=lambda x: abs(x - x_of[o]))
            if lane == lanes_same[0]:
                factors = camera
            else:
                factors = lane_profiles.setdefault(lane, stop_and_go(rng, num_frames, 1.5))
        else:
            factors = stop_and_go(rng, num_frames, 1.5)
        progress[o] = progress_of(factors)
    objects.progress = progress


def build_scene(
    seed: int,
    width: int,
    height: int,
    num_frames: int,
    camera_speed: tuple[float, float] = (0.35, 0.75),
    yaw_amplitude_deg: float = 3.0,
    motion: str = "even",
) -> Scene:
    """Lay out one sequence's street, camera path and objects from ``seed`` (the same seed, the
    same scene: the parts below draw from one generator in this order). ``motion`` ``varied``
    changes only how the camera and the objects move (its own generator), not the street."""
    if motion not in MOTIONS:
        raise ValueError(f"motion must be one of {MOTIONS}, got {motion!r}")
    rng = np.random.default_rng(seed)
    palette = _palette(rng)
    road_half = 2 * LANE_WIDTH
    lanes_same = (LANE_WIDTH / 2, LANE_WIDTH * 1.5)
    lanes_oncoming = (-LANE_WIDTH / 2, -LANE_WIDTH * 1.5)
    sidewalk_w = rng.uniform(3.0, 5.0)
    facade_x = road_half + sidewalk_w
    camera, speed = _camera_path(rng, num_frames, width, height, lanes_same[0], camera_speed, yaw_amplitude_deg)
    near, far = -30.0, camera.position[-1, 2] + 140.0

    b = _Builder()
    facades = (_facades(rng, -facade_x, near - 50, far + 50), _facades(rng, facade_x, near - 50, far + 50))
    _add_street_furniture(b, rng, road_half, near, far)
    _add_traffic(b, rng, speed, lanes_same, lanes_oncoming, near, far)
    _add_cyclists(b, rng, seed, road_half, speed, far)
    _add_pedestrians(b, rng, road_half, sidewalk_w, near, far)
    prims, objects = b.build()
    scene = Scene(
        palette=palette,
        facades=facades,
        road_half_width=road_half,
        primitives=prims,
        objects=objects,
        camera=camera,
        noise_seed=int(rng.integers(0, 2**31 - 1)),
        lane_xs=(0.0, LANE_WIDTH, -LANE_WIDTH, road_half - 0.15, -road_half + 0.15),
    )
    if motion == "varied":
        _vary_motion(np.random.default_rng([seed, 2]), scene, speed, lanes_same, lanes_oncoming)
    return scene
