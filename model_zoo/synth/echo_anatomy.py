"""Echo anatomy per view and frame: where each chamber, wall and valve is, as reflectivity.

Geometry is in pixels of a 112 x 112 image (1.35 mm per pixel, transducer at the top
centre). The LV is an ellipse truncated at the mitral plane; in apical views the apex stays
put and the base moves towards it in systole, in the parasternal view the septum and the
posterior wall move towards each other. Walls thicken as the cavity shrinks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIZE = 112
MM_PER_PX = 1.35
APEX_XY = (56.0, 2.0)

BLOOD = 0.00005
TISSUE = 0.015
MYOCARDIUM = 0.15
PERICARDIUM = 1.0
VALVE = 0.5


@dataclass(frozen=True)
class Heart:
    """Per-patient chamber sizes and motion (shared by the views)."""

    lv_length: float
    lv_width: float
    la_scale: float
    ef: float
    wall: float
    shift: tuple[float, float]
    tilt_deg: float

    @property
    def es_scales(self) -> tuple[float, float]:
        """End-systolic (short-axis, long-axis) scale giving the planted EF (V ~ w^2 * l)."""
        long_ = 1.0 - 0.3 * self.ef
        short = float(np.sqrt((1.0 - self.ef) / long_))
        return short, long_


@dataclass(frozen=True)
class Phase:
    """Where in the cycle: LV filling v (1 at end-diastole, 0 at end-systole), valve opening."""

    v: float
    mitral_open: float
    aortic_open: float


def cycle_phase(phi: float) -> Phase:
    """Volume and valve state at cycle fraction ``phi`` (0 = end-diastole)."""
    phi = phi % 1.0
    if phi < 0.35:
        v = 0.5 * (1.0 + np.cos(np.pi * phi / 0.35))
    elif phi < 0.6:
        v = 0.8 * 0.5 * (1.0 - np.cos(np.pi * (phi - 0.35) / 0.25))
    elif phi < 0.85:
        v = 0.8 + 0.05 * (phi - 0.6) / 0.25
    else:
        v = 0.85 + 0.15 * 0.5 * (1.0 - np.cos(np.pi * (phi - 0.85) / 0.15))
    mitral = np.interp(
        phi, [0, 0.36, 0.4, 0.58, 0.68, 0.84, 0.88, 0.96, 1.0], [0, 0, 1, 1, 0.35, 0.35, 1, 1, 0]
    )
    aortic = np.interp(phi, [0, 0.03, 0.07, 0.3, 0.35, 1.0], [0, 0, 1, 1, 0, 0])
    return Phase(float(v), float(mitral), float(aortic))


_YY, _XX = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)


class Canvas:
    """A reflectivity map painted shape by shape, with anti-aliased edges and region masks."""

    def __init__(self) -> None:
        self.refl = np.full((SIZE, SIZE), TISSUE, dtype=np.float32)
        self.regions: dict[str, np.ndarray] = {}

    @property
    def xx(self) -> np.ndarray:
        return _XX

    @property
    def yy(self) -> np.ndarray:
        return _YY

    @staticmethod
    def _window(cx: float, cy: float, radius: float) -> tuple[slice, slice]:
        """Rows and columns within ``radius`` (+2 px of soft edge) of a point."""
        r = radius + 2.0
        rows = slice(max(0, int(cy - r)), max(0, min(SIZE, int(cy + r) + 2)))
        cols = slice(max(0, int(cx - r)), max(0, min(SIZE, int(cx + r) + 2)))
        return rows, cols

    def ellipse(
        self,
        center: tuple[float, float],
        semi_u: float,
        semi_v: float,
        angle_deg: float = 0.0,
        u_max: float | None = None,
    ) -> np.ndarray:
        """Soft coverage (0..1) of an ellipse, optionally cut at ``u <= u_max``."""
        cover = np.zeros((SIZE, SIZE), dtype=np.float32)
        rows, cols = self._window(center[0], center[1], max(semi_u, semi_v))
        a = np.deg2rad(angle_deg)
        dx, dy = _XX[rows, cols] - center[0], _YY[rows, cols] - center[1]
        u = dx * np.sin(a) + dy * np.cos(a)
        v = dx * np.cos(a) - dy * np.sin(a)
        r = np.sqrt((u / semi_u) ** 2 + (v / semi_v) ** 2)
        part = np.clip(0.5 - (r - 1.0) * min(semi_u, semi_v), 0.0, 1.0)
        if u_max is not None:
            part *= np.clip(0.5 - (u - u_max), 0.0, 1.0)
        cover[rows, cols] = part
        return cover

    def segment(
        self, p: tuple[float, float], q: tuple[float, float], half_width: float
    ) -> np.ndarray:
        """Soft coverage of a thick line segment from p to q."""
        cover = np.zeros((SIZE, SIZE), dtype=np.float32)
        mid = ((p[0] + q[0]) / 2, (p[1] + q[1]) / 2)
        rows, cols = self._window(
            mid[0], mid[1], np.hypot(q[0] - p[0], q[1] - p[1]) / 2 + half_width
        )
        px, py = _XX[rows, cols] - p[0], _YY[rows, cols] - p[1]
        dx, dy = q[0] - p[0], q[1] - p[1]
        t = np.clip((px * dx + py * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
        d = np.hypot(px - t * dx, py - t * dy)
        cover[rows, cols] = np.clip(0.5 - (d - half_width), 0.0, 1.0)
        return cover

    def paint(self, cover: np.ndarray, value: float) -> None:
        self.refl = self.refl * (1.0 - cover) + value * cover

    def mark(self, name: str, cover: np.ndarray) -> None:
        hit = cover >= 0.5
        self.regions[name] = self.regions.get(name, np.zeros_like(hit)) | hit


def _leaflet(
    hinge: np.ndarray, toward_apex: np.ndarray, inward: np.ndarray, length: float, opening: float
):
    closed = hinge + length * (0.95 * inward + 0.3 * toward_apex)
    opened = hinge + length * (0.95 * toward_apex - 0.15 * inward)
    tip = closed + opening * (opened - closed)
    return (float(hinge[0]), float(hinge[1])), (float(tip[0]), float(tip[1]))


def _apical(canvas: Canvas, heart: Heart, phase: Phase, four_chamber: bool) -> None:
    """A4C (RV screen left, LV screen right, atria below) or A2C (LV and LA only)."""
    tilt = heart.tilt_deg + (14.0 if four_chamber else 0.0)
    a = np.deg2rad(tilt)
    u_hat = np.array([np.sin(a), np.cos(a)])
    v_hat = np.array([np.cos(a), -np.sin(a)])
    apex = np.array([APEX_XY[0] + heart.shift[0], 11.0 + heart.shift[1]])
    s_short, s_long = heart.es_scales
    k = 1.0 - phase.v
    w = heart.lv_width * (1.0 - k * (1.0 - s_short))
    length = heart.lv_length * (1.0 - k * (1.0 - s_long))
    wall = heart.wall * (1.0 + 0.45 * k * (1.0 - s_short) / 0.33)
    c_lv = apex + u_hat * 0.58 * length
    mv = apex + u_hat * length
    la_len, la_w = 32.0 * heart.la_scale * (1.0 + 0.1 * k), 26.0 * heart.la_scale * (1.0 + 0.08 * k)
    c_la = mv + u_hat * (la_len / 2 - 2.0) + v_hat * (0.08 * w if four_chamber else -0.05 * w)

    outer_lv = canvas.ellipse(
        tuple(c_lv), 0.58 * length + wall * 0.8, w / 2 + wall, tilt, 0.42 * length
    )
    outer_la = canvas.ellipse(tuple(c_la), la_len / 2 + 2.0, la_w / 2 + 2.0, tilt)
    body = np.maximum(outer_lv, outer_la)
    if four_chamber:
        rv_w = 0.65 * heart.lv_width * (1.0 - 0.5 * k * 0.35)
        rv_len = 0.4 * length
        c_rv = apex + u_hat * (length - 4.0 - rv_len) - v_hat * (w / 2 + wall + rv_w / 2 - 1.0)
        ra_semi = (12.5 * (1.0 + 0.08 * k), 10.5 * (1.0 + 0.08 * k))
        c_ra = c_la - u_hat * 3.0 - v_hat * (la_w / 2 + ra_semi[1] + 2.5)
        body = np.maximum(
            body, canvas.ellipse(tuple(c_rv), rv_len + 2.5, rv_w / 2 + 2.5, tilt, rv_len)
        )
        body = np.maximum(
            body, canvas.ellipse(tuple(c_ra), ra_semi[0] + 2.0, ra_semi[1] + 2.0, tilt)
        )
    shell = canvas.ellipse(
        tuple(c_lv), 0.58 * length + wall + 2.5, w / 2 + wall + 2.5, tilt, 0.42 * length
    )
    canvas.paint(np.clip(shell - body, 0.0, 1.0), PERICARDIUM)
    canvas.paint(body, MYOCARDIUM)

    lv = canvas.ellipse(tuple(c_lv), 0.58 * length, w / 2, tilt, 0.42 * length)
    la = canvas.ellipse(tuple(c_la), la_len / 2, la_w / 2, tilt)
    canvas.paint(lv, BLOOD)
    canvas.paint(la, BLOOD)
    canvas.mark("lv", outer_lv)
    canvas.mark("la", la)
    if four_chamber:
        canvas.paint(canvas.ellipse(tuple(c_rv), rv_len, rv_w / 2, tilt, rv_len), BLOOD)
        canvas.paint(canvas.ellipse(tuple(c_ra), ra_semi[0], ra_semi[1], tilt), BLOOD)

    half_mv = 0.5 * w * np.sqrt(1.0 - (0.42 / 0.58) ** 2) + 0.5
    for side, frac in ((1.0, 0.48), (-1.0, 0.62)):
        hinge = mv + side * v_hat * half_mv
        p, q = _leaflet(hinge, -u_hat, -side * v_hat, frac * 2 * half_mv * 0.85, phase.mitral_open)
        canvas.paint(canvas.segment(p, q, 0.7), VALVE)
    if four_chamber:
        tv = c_rv + u_hat * rv_len
        for side in (1.0, -1.0):
            hinge = tv + side * v_hat * (0.45 * rv_w)
            p, q = _leaflet(hinge, -u_hat, -side * v_hat, 0.4 * rv_w, phase.mitral_open)
            canvas.paint(canvas.segment(p, q, 0.6), VALVE)


def _parasternal(canvas: Canvas, heart: Heart, phase: Phase) -> None:
    """PLAX: RV at the top, septum, LV (apex screen left), aortic root and LA on the right."""
    s_short, _ = heart.es_scales
    k = 1.0 - phase.v
    sx, sy = heart.shift
    tilt = 90.0 + 10.0 + heart.tilt_deg
    lvid = 0.5 * heart.lv_width * 0.95 * (1.0 - k * (1.0 - s_short))
    wall = heart.wall * (1.0 + 0.45 * k * (1.0 - s_short) / 0.33)
    c_lv = (34.0 + sx, 58.0 + sy)
    lv_half_len = 40.0 * heart.lv_length / 60.0
    c_rv = (44.0 + sx, 58.0 + sy - lvid - wall - 7.0)
    c_ao = (84.0 + sx, 47.0 + sy)
    la_semi = (15.0 * heart.la_scale * (1.0 + 0.1 * k), 11.0 * heart.la_scale * (1.0 + 0.1 * k))
    c_la = (84.0 + sx, 58.0 + sy + 4.0 + la_semi[1])

    outer_lv = canvas.ellipse(c_lv, lv_half_len + wall, lvid + wall, tilt)
    body = np.maximum(outer_lv, canvas.ellipse(c_rv, 44.0, 10.0, tilt))
    body = np.maximum(body, canvas.ellipse(c_ao, 24.0, 13.0, tilt - 2.0))
    body = np.maximum(body, canvas.ellipse(c_la, la_semi[0] + 2.5, la_semi[1] + 2.5, 90.0))
    peri = canvas.ellipse(c_lv, lv_half_len + wall + 3.0, lvid + wall + 3.0, tilt)
    peri *= canvas.yy > c_lv[1]
    canvas.paint(np.clip(peri - body, 0.0, 1.0), PERICARDIUM)
    canvas.paint(body, MYOCARDIUM)

    canvas.paint(canvas.ellipse(c_rv, 40.0, 6.5, tilt), BLOOD)
    lv = canvas.ellipse(c_lv, lv_half_len, lvid, tilt)
    canvas.paint(lv, BLOOD)
    canvas.paint(canvas.ellipse(c_ao, 22.0, 9.0, tilt - 2.0) * (canvas.xx > 66.0 + sx), BLOOD)
    la = canvas.ellipse(c_la, la_semi[0], la_semi[1], 90.0)
    canvas.paint(la, BLOOD)
    canvas.paint(canvas.ellipse((74.0 + sx, 100.0 + sy), 4.5, 4.5), BLOOD)
    canvas.mark("lv", outer_lv)
    canvas.mark("la", la)

    x_av = 78.0 + sx
    for y0, y1 in ((c_ao[1] - 8.0, c_ao[1] - 1.0), (c_ao[1] + 8.0, c_ao[1] + 1.0)):
        closed_tip = (x_av, y1)
        open_tip = (x_av + 7.0, y0 + (1.5 if y0 < y1 else -1.5))
        tip = tuple(
            closed_tip[i] + phase.aortic_open * (open_tip[i] - closed_tip[i]) for i in range(2)
        )
        canvas.paint(canvas.segment((x_av, y0), tip, 0.6), VALVE)
    left = np.array([-1.0, 0.0])
    for hinge, inward, length in (
        ((68.0 + sx, c_ao[1] + 9.0), np.array([0.0, 1.0]), 12.0),
        ((70.0 + sx, c_lv[1] + lvid + 1.0), np.array([0.0, -1.0]), 7.0),
    ):
        p, q = _leaflet(np.array(hinge), left, inward, length, phase.mitral_open)
        canvas.paint(canvas.segment(p, q, 0.7), VALVE)


def render_anatomy(view: str, heart: Heart, phase: Phase) -> Canvas:
    """The reflectivity map and the LV / LA regions of one frame of one view."""
    canvas = Canvas()
    if view == "PLAX":
        _parasternal(canvas, heart, phase)
    else:
        _apical(canvas, heart, phase, four_chamber=view == "A4C")
    return canvas
