"""Write the README's picture of each health condition: one generated frame, as it is and as each
condition makes it, captioned with what the health checks measure on it and the reasons they flag.

    PYTHONPATH=. .venv/bin/python tools/health_panel.py docs/images/health_conditions.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from seg_perception.core.health import HealthMonitor, HealthThresholds
from seg_perception.synthetic.scenes import generate_drive

W, H = 256, 144
CAPTION = 36


def _conditions(frames: list[np.ndarray]) -> list[tuple[str, list[np.ndarray]]]:
    """Each condition as the frames a camera would send (the checks need flag_frames of them)."""
    n = HealthThresholds().flag_frames + 1
    still = frames[0]
    return [
        ("good", frames[:n]),
        ("frozen (same pixels, new stamps)", [still] * n),
        ("black", [np.zeros_like(f) for f in frames[:n]]),
        ("saturated", [np.full_like(f, 255) for f in frames[:n]]),
        ("covered lens (blurred)", [cv2.GaussianBlur(f, (0, 0), W / 50) for f in frames[:n]]),
        ("fog (contrast x 0.2)", [(f.astype(np.float32) * 0.2 + 170).astype(np.uint8) for f in frames[:n]]),
    ]


def _tile(title: str, stream: list[np.ndarray]) -> np.ndarray:
    monitor = HealthMonitor()
    for i, frame in enumerate(stream):
        reading = monitor.update(frame, i * 66_666_667)
    v = reading.values
    flagged = ", ".join(sorted(reading.flagged)) or "no flag"
    lines = [
        f"{title}: {reading.health} ({flagged})",
        f"dark {v['dark']:.2f} sat {v['saturated']:.2f} blocked {v['blocked']:.2f} "
        f"range {v['low_visibility']:.0f} frozen {v['frozen']:.0f}",
    ]
    tile = np.full((H + CAPTION, W, 3), 24, np.uint8)
    tile[:H] = stream[-1]
    for k, line in enumerate(lines):
        cv2.putText(tile, line, (3, H + 14 + 15 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def health_panel() -> np.ndarray:
    """An RGB panel, three tiles per row."""
    frames = [s.image for s in generate_drive(8, W, H, seed=3)]
    tiles = [_tile(title, stream) for title, stream in _conditions(frames)]
    rows = [np.hstack(tiles[i : i + 3]) for i in range(0, len(tiles), 3)]
    return np.vstack(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="PNG to write")
    args = parser.parse_args()
    cv2.imwrite(str(args.out), cv2.cvtColor(health_panel(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
