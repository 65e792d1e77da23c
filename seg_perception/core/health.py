"""Perception health: per-camera checks that say when a camera's masks cannot be trusted.

Each check turns what the pipeline already has for a frame (the input pixels, the confidence map, the
drivable mask) into one measured value and a per-frame verdict (bad or good); a hysteresis turns the
verdicts into a flag: a reason is flagged after `flag_frames` consecutive bad frames and cleared after
`clear_frames` consecutive good ones. All image checks run on one fixed pixel sample of the frame
(SAMPLE_SIZE, nearest pixels: the same pixels every frame) and its grey image, so their cost and their
thresholds do not depend on the camera's resolution.

Reasons, what is measured (the value reported as `health.<reason>`), and when a frame is bad:
  frozen            consecutive frames whose pixel sample equals the previous one while stamps advance
  dark              share of grey pixels below `dark_level`; bad at or above `dark_share`
  saturated         share of grey pixels at or above `saturated_level`; bad at or above `saturated_share`
  blocked           share of grid cells (GRID) whose mean |Laplacian| is below `blocked_detail` (a covered
                    or smeared lens leaves no detail); bad at or above `blocked_share`
  low_visibility    grey levels between the 2nd and 98th percentile (fog, heavy rain, glare wash the
                    contrast out: Autoware's image diagnostics call it so); bad below `low_visibility_range`
  low_confidence    mean confidence (0..1); bad below `confidence_ratio` x its baseline, the mean over the
                    first `baseline_frames` frames with no failed reason flagged
  drivable_collapse drivable share of the lower half of the image; bad below `drivable_ratio` x its
                    baseline (the mean over the first `baseline_frames` good frames, then a running mean
                    over good frames with weight 1 / `baseline_frames`)
  stale             seconds since the previous frame (offline: between stamps; in the node: since the
                    last input arrived); bad above `stale_s`, flagged and cleared at once
frozen, dark, saturated and blocked make the camera `failed` (the masks say nothing about the scene);
low_visibility, low_confidence, drivable_collapse and stale make it `degraded`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

REASONS = ("frozen", "dark", "saturated", "blocked", "low_visibility", "low_confidence", "drivable_collapse", "stale")
FAILED_REASONS = frozenset({"frozen", "dark", "saturated", "blocked"})
OK, DEGRADED, FAILED = "ok", "degraded", "failed"
SAMPLE_SIZE = (160, 90)  # (width, height) of the fixed pixel sample (nearest pixels) every check reads
GRID = (8, 6)  # (columns, rows) of the blockage grid: cells of 20 x 15 sample pixels


@dataclass(frozen=True)
class HealthThresholds:
    """What makes a frame bad for each check, and the hysteresis (see the module docstring)."""

    flag_frames: int = 3
    clear_frames: int = 5
    dark_level: int = 20
    dark_share: float = 0.9
    saturated_level: int = 250
    saturated_share: float = 0.6
    blocked_detail: float = 3.0
    blocked_share: float = 0.6
    low_visibility_range: int = 64
    confidence_ratio: float = 0.7  # 0 turns low_confidence off
    drivable_ratio: float = 0.25  # 0 turns drivable_collapse off
    baseline_frames: int = 30
    stale_s: float = 3.0


def health_level(flagged: frozenset[str] | set[str]) -> str:
    """ok, degraded or failed for a set of flagged reasons."""
    if flagged & FAILED_REASONS:
        return FAILED
    return DEGRADED if flagged else OK


@dataclass(frozen=True)
class HealthReading:
    """One frame's measured value per reason (nan: not measured this frame) and the reasons flagged."""

    values: dict[str, float]
    flagged: frozenset[str]

    @property
    def health(self) -> str:
        return health_level(self.flagged)


class Hysteresis:
    """A flag raised after `flag` consecutive bad verdicts and cleared after `clear` consecutive good ones;
    a None verdict (not measured) changes nothing."""

    def __init__(self, flag: int, clear: int) -> None:
        self.flag, self.clear = flag, clear
        self.flagged = False
        self._bad = self._good = 0

    def update(self, bad: bool | None) -> bool:
        if bad is None:
            return self.flagged
        if bad:
            self._bad, self._good = self._bad + 1, 0
            self.flagged = self.flagged or self._bad >= self.flag
        else:
            self._good, self._bad = self._good + 1, 0
            self.flagged = self.flagged and self._good < self.clear
        return self.flagged


def low_detail_share(grey: np.ndarray, detail: float) -> float:
    """Share of GRID cells of a SAMPLE_SIZE grey image whose mean |Laplacian| is below `detail`."""
    lap = cv2.convertScaleAbs(cv2.Laplacian(grey, cv2.CV_16S))  # |Laplacian|, saturating at 255
    # Each cell's sum in integers, divided in float64: the mean rounded once. (INTER_AREA's float32 mean was
    # off by one rounding: a cell whose mean is exactly 0.08 read as below a detail of 0.08.)
    columns, rows = GRID
    sums = lap.reshape(rows, lap.shape[0] // rows, columns, lap.shape[1] // columns).sum(axis=(1, 3))
    cells = sums / (lap.size // sums.size)
    return float(np.count_nonzero(cells < detail)) / cells.size


class _Baseline:
    """The mean of the first `frames` values, then a running mean with weight 1 / `frames`."""

    def __init__(self, frames: int, running: bool) -> None:
        self.frames, self.running = frames, running
        self.value = math.nan
        self._sum, self._n = 0.0, 0

    def add(self, value: float) -> None:
        if self._n < self.frames:
            self._sum, self._n = self._sum + value, self._n + 1
            if self._n == self.frames:
                self.value = self._sum / self._n
        elif self.running:
            self.value += (value - self.value) / self.frames


class HealthMonitor:
    """Every check for one camera; feed it each segmented frame in order with `update`.

    `drivable_table` ([256] uint8, nonzero for drivable label ids) lets drivable_collapse read the labels
    on frames whose drivable mask was not computed."""

    def __init__(
        self, thresholds: HealthThresholds = HealthThresholds(), drivable_table: np.ndarray | None = None
    ) -> None:
        self.t = thresholds
        self._drivable_table = drivable_table
        self._sample = np.empty((SAMPLE_SIZE[1], SAMPLE_SIZE[0], 3), np.uint8)
        self._previous = np.empty_like(self._sample)
        self._grey = np.empty(SAMPLE_SIZE[::-1], np.uint8)
        self._mask = np.empty(SAMPLE_SIZE[::-1], np.uint8)
        self._have_previous = False
        self._last_stamp: int | None = None
        self._repeats = 0
        self._hysteresis = {r: Hysteresis(thresholds.flag_frames, thresholds.clear_frames) for r in REASONS}
        self._confidence = _Baseline(thresholds.baseline_frames, running=False)
        self._drivable = _Baseline(thresholds.baseline_frames, running=True)
        self.flagged: frozenset[str] = frozenset()
        self.values: dict[str, float] = dict.fromkeys(REASONS, math.nan)

    def update(
        self,
        frame: np.ndarray,
        stamp_ns: int,
        confidence: np.ndarray | None = None,
        drivable: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> HealthReading:
        """Check one (H, W, 3) uint8 frame (RGB or BGR: the grey weights differ by little), with its
        confidence map (uint8, x255) and drivable mask (nonzero: drivable) where they were computed, else
        its labels (read through `drivable_table`)."""
        t = self.t
        verdicts: dict[str, bool | None] = {}
        values: dict[str, float] = {}
        stamp_advanced = self._last_stamp is None or stamp_ns > self._last_stamp
        gap_s = (stamp_ns - self._last_stamp) / 1e9 if self._last_stamp is not None else 0.0
        self._last_stamp = stamp_ns if self._last_stamp is None else max(stamp_ns, self._last_stamp)
        values["stale"] = max(gap_s, 0.0)
        verdicts["stale"] = gap_s > t.stale_s

        sample = cv2.resize(frame, SAMPLE_SIZE, dst=self._sample, interpolation=cv2.INTER_NEAREST)
        if stamp_advanced:
            same = self._have_previous and cv2.norm(sample, self._previous, cv2.NORM_INF) == 0
            self._repeats = self._repeats + 1 if same else 0
            verdicts["frozen"] = same
        values["frozen"] = float(self._repeats)
        self._sample, self._previous = self._previous, self._sample  # this sample is the next one's previous
        self._have_previous = True

        small = cv2.cvtColor(sample, cv2.COLOR_RGB2GRAY, dst=self._grey)
        cumulative = cv2.calcHist([small], [0], None, [256], [0, 256]).ravel().cumsum()  # pixels <= each level
        values["dark"] = float(cumulative[t.dark_level - 1]) / small.size
        values["saturated"] = 1.0 - float(cumulative[t.saturated_level - 1]) / small.size
        values["blocked"] = low_detail_share(small, t.blocked_detail)
        values["low_visibility"] = float(
            np.searchsorted(cumulative, 0.98 * small.size) - np.searchsorted(cumulative, 0.02 * small.size)
        )
        verdicts["low_visibility"] = values["low_visibility"] < t.low_visibility_range
        verdicts["dark"] = values["dark"] >= t.dark_share
        verdicts["saturated"] = values["saturated"] >= t.saturated_share
        verdicts["blocked"] = values["blocked"] >= t.blocked_share
        failed_now = any(verdicts.get(r) for r in FAILED_REASONS) or bool(self.flagged & FAILED_REASONS)

        values["low_confidence"] = math.nan
        if confidence is not None and t.confidence_ratio > 0:
            mean = float(
                cv2.mean(cv2.resize(confidence, SAMPLE_SIZE, dst=self._mask, interpolation=cv2.INTER_NEAREST))[0]
            )
            values["low_confidence"] = mean / 255.0
            base = self._confidence.value
            verdicts["low_confidence"] = (
                None if math.isnan(base) else values["low_confidence"] < t.confidence_ratio * base
            )
            if math.isnan(base) and not failed_now:
                self._confidence.add(values["low_confidence"])

        values["drivable_collapse"] = math.nan
        mask: np.ndarray | None = None
        if t.drivable_ratio > 0 and drivable is not None:
            mask = cv2.resize(drivable, SAMPLE_SIZE, dst=self._mask, interpolation=cv2.INTER_NEAREST)
        elif t.drivable_ratio > 0 and labels is not None and self._drivable_table is not None:
            sampled = cv2.resize(labels, SAMPLE_SIZE, dst=self._mask, interpolation=cv2.INTER_NEAREST)
            mask = cv2.LUT(sampled, self._drivable_table, dst=self._mask)
        if mask is not None:
            lower = mask[SAMPLE_SIZE[1] // 2 :]
            share = float(np.count_nonzero(lower)) / lower.size
            values["drivable_collapse"] = share
            base = self._drivable.value
            bad = None if math.isnan(base) else share < t.drivable_ratio * base
            verdicts["drivable_collapse"] = bad
            if not bad and not failed_now:
                self._drivable.add(share)

        flagged = set()
        for reason in REASONS:
            h = self._hysteresis[reason]
            if reason == "stale":  # a gap is one event: flagged on the frame after it, cleared by the next
                h.flagged = bool(verdicts["stale"])
            elif h.update(verdicts.get(reason)) is False:
                continue
            if h.flagged:
                flagged.add(reason)
        self.flagged = frozenset(flagged)
        self.values = values
        return HealthReading(values, self.flagged)

    @property
    def baselines(self) -> dict[str, float]:
        """The learned baselines (nan until `baseline_frames` frames were seen)."""
        return {"low_confidence": self._confidence.value, "drivable_collapse": self._drivable.value}


def _shown(reason: str, value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if reason in ("frozen", "low_visibility"):
        return str(int(value))
    return f"{value:.2f}" if reason == "stale" else f"{value:.3f}"


@dataclass(frozen=True)
class HealthReport:
    """What /diagnostics says about one camera's health: the reasons flagged and the keys `health`
    (ok, degraded or failed), `health.<reason>` (its measured value, n/a where not measured) for every
    reason, and `health_baseline.<reason>` for the learned baselines."""

    flagged: frozenset[str]
    values: dict[str, str]

    @property
    def health(self) -> str:
        return health_level(self.flagged)

    @property
    def message(self) -> str:
        """'failed: dark, blocked', 'degraded: low_confidence', or '' when healthy (reasons in REASONS order)."""
        if not self.flagged:
            return ""
        return f"{self.health}: " + ", ".join(r for r in REASONS if r in self.flagged)


def health_report(monitor: HealthMonitor, since_input_s: float) -> HealthReport:
    """The monitor's state now, with stale measured as the seconds since the camera's last input. A stale
    camera is only stale: the flags of its last frames describe nothing it publishes now (their values stay)."""
    flagged = set(monitor.flagged) - {"stale"}
    measured = {**monitor.values, "stale": max(since_input_s, 0.0)}
    if since_input_s > monitor.t.stale_s:
        flagged = {"stale"}
    values = {"health": health_level(flagged)}
    values.update({f"health.{r}": _shown(r, measured.get(r, math.nan)) for r in REASONS})
    values.update({f"health_baseline.{r}": _shown(r, v) for r, v in monitor.baselines.items()})
    return HealthReport(frozenset(flagged), values)


@dataclass
class Span:
    """Consecutive frames flagged for one reason: first and last stamp (ns) and how many frames."""

    first_ns: int
    last_ns: int
    frames: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "seconds": round((self.last_ns - self.first_ns) / 1e9, 3),
            "frames": self.frames,
        }


@dataclass
class HealthLog:
    """Per reason: the frames flagged and the spans of the drive they cover (one camera or a whole run)."""

    frames: int = 0
    flagged: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    spans: dict[str, list[Span]] = field(default_factory=lambda: {r: [] for r in REASONS})
    _open: dict[str, bool] = field(default_factory=dict, repr=False)

    def add(self, stamp_ns: int, reading: HealthReading) -> None:
        self.frames += 1
        for reason in REASONS:
            if reason in reading.flagged:
                self.flagged[reason] += 1
                spans = self.spans[reason]
                if self._open.get(reason):
                    spans[-1].last_ns, spans[-1].frames = stamp_ns, spans[-1].frames + 1
                else:
                    spans.append(Span(stamp_ns, stamp_ns))
                self._open[reason] = True
            else:
                self._open[reason] = False

    def extend(self, later: HealthLog) -> None:
        """Append the log of the frames that followed (a later chunk of the same drive)."""
        self.frames += later.frames
        for reason in REASONS:
            self.flagged[reason] += later.flagged[reason]
            self.spans[reason].extend(Span(s.first_ns, s.last_ns, s.frames) for s in later.spans[reason])
        self._open = dict(later._open)

    def to_json(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "flagged_frames": dict(self.flagged),
            "spans": {r: [s.to_json() for s in self.spans[r]] for r in REASONS if self.spans[r]},
        }


def frame_spans(flagged: dict[int, frozenset[str]], names: list[str]) -> dict[str, Any]:
    """Per reason, the frames flagged and the runs of consecutive frames they form, by frame name: for
    frame sequences without stamps (`eval`'s image files, in name order). `flagged` maps frame index to
    its flagged reasons; `names[i]` names frame i."""
    out: dict[str, Any] = {"frames": len(names), "flagged_frames": {}, "spans": {}}
    for reason in REASONS:
        hits = sorted(i for i, reasons in flagged.items() if reason in reasons)
        out["flagged_frames"][reason] = len(hits)
        runs: list[list[int]] = []
        for i in hits:
            if runs and runs[-1][1] == i - 1:
                runs[-1][1] = i
            else:
                runs.append([i, i])
        if runs:
            out["spans"][reason] = [{"first": names[a], "last": names[b], "frames": b - a + 1} for a, b in runs]
    return out
