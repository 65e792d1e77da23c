"""The bench report's summary, its README markdown and its PNG plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SUMMARY_SIZE = (1280, 720)


def summarise(measurements: list[dict[str, Any]], node: dict[str, Any]) -> dict[str, Any]:
    size = f"{SUMMARY_SIZE[0]}x{SUMMARY_SIZE[1]}"

    def median(name: str, at: str | None = size) -> float:
        return next(m["median"] for m in measurements if m["name"] == name and (at is None or m["size"] == at))

    pure = median("pure_inference", None)
    pipeline, straight = median("pipeline"), median("straightforward")
    s: dict[str, Any] = {
        "size": size,
        "pure_ms": pure,
        "pipeline_ms": pipeline,
        "pipeline_overlay_ms": median("pipeline_overlay"),
        "straightforward_ms": straight,
        "speedup_vs_straightforward": straight / pipeline,
    }
    if node:
        n30, over = node["30hz"], node["overload"]
        s.update(
            node_p50_ms=n30["latency_ms"]["p50"],
            node_p99_ms=n30["latency_ms"]["p99"],
            overload_p99_ms=over["latency_ms"]["p99"],
            dropped_overload=over["dropped"],
            rss_growth_mb=over["rss_mb_end"] - n30["rss_mb_start"],
        )
    targets = {
        "pipeline_le_1.15x_pure_plus_2ms": pipeline <= 1.15 * pure + 2.0,
        "straightforward_over_pipeline_ge_1.5": straight / pipeline >= 1.5,
    }
    if node:
        targets.update(
            {
                "node_p50_le_pipeline_plus_3ms": s["node_p50_ms"] <= pipeline + 3.0,
                "overload_p99_le_2.5x_p50": s["overload_p99_ms"] <= 2.5 * s["node_p50_ms"],
                "overload_no_upward_trend": node["overload"]["latency_trend_ms"]
                <= 0.1 * node["overload"]["latency_ms"]["p50"],
                "rss_growth_lt_10mb": s["rss_growth_mb"] < 10.0,
            }
        )
    s["targets"] = targets
    return s


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for phase, data in report.get("node", {}).items():
        lat = np.sort(np.asarray(data["latencies_ms"]))
        if len(lat):
            ax1.plot(lat, np.arange(1, len(lat) + 1) / len(lat), label=f"{phase} ({data['rate_hz']:.0f} Hz)")
    ax1.set_xlabel("end-to-end latency (ms)")
    ax1.set_ylabel("fraction of frames")
    ax1.set_title("Node over DDS, 1280x720")
    ax1.grid(alpha=0.3)
    ax1.legend()
    rows = [m for m in report["measurements"] if m["name"].startswith("pipeline")]
    labels = [f"{m['name'].replace('pipeline', 'pipe')}\n{m['size']}" for m in rows]
    bottom = np.zeros(len(rows))
    for stage in ("decode", "prepare", "inference", "postprocess"):
        vals = np.array([m["stages_ms"].get(stage, 0.0) for m in rows])
        ax2.bar(labels, vals, bottom=bottom, label=stage)
        bottom += vals
    straight = [m for m in report["measurements"] if m["name"] == "straightforward"]
    ax2.scatter(
        [f"pipe\n{m['size']}" for m in straight],
        [m["median"] for m in straight],
        color="k",
        marker="x",
        zorder=3,
        label="straightforward",
    )
    ax2.set_ylabel("median ms per frame")
    ax2.set_title("Per-stage time (pure inference %.1f ms)" % report["summary"]["pure_ms"])  # noqa: UP031
    ax2.tick_params(axis="x", labelsize=7)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(report: dict[str, Any]) -> str:
    """The README's performance section, generated from one report."""
    m, s = report["machine"], report["summary"]
    lines = [
        f"Measured by `seg-perception bench` on {m['cpu']} ({m['cores']} cores, no GPU), ONNX Runtime "
        f"{m['onnxruntime']}, model `{report['model']}`, {report['settings']['frames']} repeats per offline "
        f"measurement (medians; p10–p90 in brackets), node phases of {report['settings']['node_seconds']:.0f} s.",
        "",
        "| camera size | pipeline (labels + drivable) | + overlay | straightforward | speed-up |",
        "|---|---|---|---|---|",
    ]
    by = {(x["name"], x["size"]): x for x in report["measurements"]}
    for size in report["settings"]["sizes"]:
        pipe, over, base = by[("pipeline", size)], by[("pipeline_overlay", size)], by[("straightforward", size)]
        lines.append(
            f"| {size} | {pipe['median']:.1f} ms ({pipe['p10']:.1f}–{pipe['p90']:.1f}) | {over['median']:.1f} ms "
            f"| {base['median']:.1f} ms | {base['median'] / pipe['median']:.2f}× |"
        )
    pure = next(x for x in report["measurements"] if x["name"] == "pure_inference")
    lines += ["", f"Pure inference (the model alone on a ready tensor, {pure['size']}): {pure['median']:.1f} ms.", ""]
    if report.get("node"):
        n30, over = report["node"]["30hz"], report["node"]["overload"]
        lines += [
            "| node over DDS, 1280x720 | rate in | answered | dropped | p50 | p95 | p99 | max | out fps | CPU | RSS |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, d in (("camera rate", n30), ("overload", over)):
            lat = d["latency_ms"]
            lines.append(
                f"| {name} | {d['rate_hz']:.0f} Hz | {d['answered']} | {d['dropped']} | {lat['p50']:.1f} ms | "
                f"{lat['p95']:.1f} ms | {lat['p99']:.1f} ms | {lat['max']:.1f} ms | {d['output_fps']:.1f} | "
                f"{d['cpu_percent']:.0f} % | {d['rss_mb_start']:.0f}→{d['rss_mb_end']:.0f} MB |"
            )
        lines.append("")
    if report.get("multi_camera"):
        ratios = ", ".join(f"{x['cameras']} cameras {x['throughput_ratio']:.2f}×" for x in report["multi_camera"])
        lines += [
            f"Multi-camera batching ({report['multi_camera'][0]['size']}), throughput of one batched call "
            f"over N single-frame calls: {ratios}.",
            "",
        ]
    lines += ["| target (1280x720) | met |", "|---|---|"]
    lines += [f"| {k} | {'yes' if v else '**no**'} |" for k, v in s["targets"].items()]
    return "\n".join(lines) + "\n"
