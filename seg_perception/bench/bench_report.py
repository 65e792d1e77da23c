"""The bench report's summary, its README markdown and its PNG plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.bench.memory_figures import classify
from seg_perception.bench.message_path import markdown_line

SUMMARY_SIZE = (1280, 720)
RSS_GROWTH_TARGET_MB = 10.0
# Interleaved rounds of pure inference and the pipeline whose medians spread more than this share of their
# median (max - min over median) say the machine's speed changed during the run: its timing targets are noise.
SPREAD_BOUND = 0.15
NOISY = "noisy"
# Targets that rest on timing (the RSS target does not): "noisy" instead of met or missed when untrusted.
TIMING_TARGETS = (
    "pipeline_le_1.15x_pure_plus_2ms",
    "straightforward_over_pipeline_ge_1.5",
    "health_checks_le_0.3ms",
    "node_p50_le_pipeline_plus_3ms",
    "overload_p99_le_2.5x_p50",
    "overload_no_upward_trend",
)


def spread(values: list[float]) -> float:
    """(max - min) / median of round medians: 0 when every round took as long."""
    middle = float(np.median(values))
    return (max(values) - min(values)) / middle if middle > 0 else 0.0


def noise_reasons(interleaved: dict[str, Any] | None, load_average: tuple[float, ...], cores: int | None) -> list[str]:
    """Why this run's timing figures cannot be trusted (empty: they can). `interleaved` holds the round
    medians of pure inference and the pipeline measured alternately; `load_average` the 1-minute load
    averages sampled over the run."""
    reasons = []
    if interleaved is not None:
        pure, pipe = interleaved["pure_round_medians_ms"], interleaved["pipeline_round_medians_ms"]
        if float(np.median(pure)) > float(np.median(pipe)):
            reasons.append("pure inference measured slower than the pipeline that contains it")
        for name, rounds in (("pure inference", pure), ("pipeline", pipe)):
            if len(rounds) > 1 and spread(rounds) > SPREAD_BOUND:
                reasons.append(f"{name} round medians spread {spread(rounds):.0%}, above {SPREAD_BOUND:.0%}")
    if cores and load_average and max(load_average) > cores:
        reasons.append(f"load average {max(load_average):.1f} above the {cores} cores")
    return reasons


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _check(ok: bool | None) -> bool | None:
    return None if ok is None else bool(ok)


def node_memory(n30: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """The node's RSS over both phases: start (idle, after the first warm-up), end (idle, after the
    last answer), peak, the rise between them, and how much of it is steady growth. The 30 Hz phase is
    the node's first sustained load at this size, so what it keeps may be one-time (arenas, DDS and
    ONNX Runtime buffers); the overload phase repeats the load at a higher rate, and what it keeps
    (its `growth_mb`, memory_figures) is the steady growth, scaled to both phases' measured span. The
    rest of the rise is one-time. None where a phase has no figures."""
    keys = ("rss_mb_start", "rss_mb_end", "rss_mb_peak", "rss_rise_mb", "rss_growth_mb", "rss_one_time_mb")
    out: dict[str, Any] = dict.fromkeys(keys)
    out["rss_verdict"] = None
    if "rss" not in n30 or "rss" not in over:
        return out
    first, repeat = n30["rss"], over["rss"]
    start, end = first["rss_mb_after_warmup"], repeat["rss_mb_end"]
    span = first["measured_s"] + repeat["measured_s"]
    growth = repeat["growth_mb"] * span / repeat["measured_s"] if repeat["measured_s"] > 0 else repeat["growth_mb"]
    out.update(
        rss_mb_start=start,
        rss_mb_end=end,
        rss_mb_peak=max(first["rss_mb_peak"], repeat["rss_mb_peak"]),
        rss_rise_mb=end - start,
        rss_growth_mb=growth,
        rss_one_time_mb=end - start - growth,
        rss_verdict=classify(growth, end - start, RSS_GROWTH_TARGET_MB),
    )
    return out


def summarise(
    measurements: list[dict[str, Any]],
    node: dict[str, Any],
    summary_size: tuple[int, int] = SUMMARY_SIZE,
    interleaved: dict[str, Any] | None = None,
    noise: list[str] | None = None,
) -> dict[str, Any]:
    """Headline figures at the summary size; a figure whose measurement failed is None, so are its targets.

    With `interleaved` (pure inference and the pipeline measured in alternating rounds), their medians over
    all rounds are the figures of record; with `noise` reasons, every timing target is "noisy"."""
    size = f"{summary_size[0]}x{summary_size[1]}"

    def median(name: str, at: str | None = size) -> float | None:
        found = [m["median"] for m in measurements if m["name"] == name and (at is None or m["size"] == at)]
        return float(found[0]) if found else None

    pure = median("pure_inference", None)
    pipeline, straight = median("pipeline"), median("straightforward")
    if interleaved is not None:
        pure = float(np.median(interleaved["pure_round_medians_ms"]))
        pipeline = float(np.median(interleaved["pipeline_round_medians_ms"]))
    s: dict[str, Any] = {
        "size": size,
        "pure_ms": pure,
        "pipeline_ms": pipeline,
        "pipeline_overlay_ms": median("pipeline_overlay"),
        "straightforward_ms": straight,
        "speedup_vs_straightforward": _ratio(straight, pipeline),
        "health_checks_ms": median("health_checks"),
    }
    n30 = node.get("30hz", {}) if node else {}
    over = node.get("overload", {}) if node else {}
    n30_lat, over_lat = n30.get("latency_ms", {}), over.get("latency_ms", {})
    memory = node_memory(n30, over)
    rss = memory["rss_growth_mb"]
    s.update(
        node_p50_ms=n30_lat.get("p50"),
        node_p99_ms=n30_lat.get("p99"),
        overload_p99_ms=over_lat.get("p99"),
        dropped_overload=over.get("dropped") if "latency_ms" in over else None,
        **memory,
        node_stages_p50_ms={name: v["p50"] for name, v in n30.get("stages_ms", {}).items()},
    )
    floor = (node.get("dds_floor", {}) if node else {}).get("latency_ms", {}).get("p50")
    segment = s["node_stages_p50_ms"].get("segment")
    over_pipeline = None if s["node_p50_ms"] is None or pipeline is None else s["node_p50_ms"] - pipeline
    s.update(
        dds_floor_p50_ms=floor,  # the echo process in the node's place (bench/echo_node.py)
        node_over_pipeline_ms=over_pipeline,
        # What the node adds beyond its Segmenter and the floor: the one-slot hand-off to the worker, the
        # decode, and the build and publish of the labels beyond the echo's (node p50 - its segment p50 - floor).
        node_own_ms=None
        if floor is None or segment is None or s["node_p50_ms"] is None
        else s["node_p50_ms"] - segment - floor,
    )
    speedup = s["speedup_vs_straightforward"]
    targets: dict[str, bool | None] = {
        "pipeline_le_1.15x_pure_plus_2ms": None if pipeline is None or pure is None else pipeline <= 1.15 * pure + 2.0,
        "straightforward_over_pipeline_ge_1.5": None if speedup is None else speedup >= 1.5,
        "health_checks_le_0.3ms": None if s["health_checks_ms"] is None else s["health_checks_ms"] <= 0.3,
    }
    if node:
        p50, o99 = s["node_p50_ms"], s["overload_p99_ms"]
        trend = over.get("latency_trend_ms")
        targets.update(
            {
                "node_p50_le_pipeline_plus_3ms": None if p50 is None or pipeline is None else p50 <= pipeline + 3.0,
                "overload_p99_le_2.5x_p50": None if o99 is None or p50 is None else o99 <= 2.5 * p50,
                "overload_no_upward_trend": None if trend is None else trend <= 0.1 * over_lat["p50"],
                "rss_growth_lt_10mb": None if rss is None else rss < RSS_GROWTH_TARGET_MB,
            }
        )
    s["targets"] = {k: NOISY if noise and k in TIMING_TARGETS else _check(v) for k, v in targets.items()}
    s["noise"] = list(noise or [])
    return s


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for phase, data in report.get("node", {}).items():
        lat = np.sort(np.asarray(data.get("latencies_ms", [])))
        if len(lat):
            ax1.plot(lat, np.arange(1, len(lat) + 1) / len(lat), label=f"{phase} ({data['rate_hz']:.0f} Hz)")
    ax1.set_xlabel("end-to-end latency (ms)")
    ax1.set_ylabel("fraction of frames")
    ax1.set_title(f"Node over DDS, {report['settings'].get('summary_size', '1280x720')}")
    ax1.grid(alpha=0.3)
    if ax1.lines:
        ax1.legend(loc="lower right")  # a CDF leaves its lower right empty
    else:  # --node-seconds 0: say so rather than show empty axes and an empty legend box
        ax1.text(0.5, 0.5, "node phases not run (--node-seconds 0)", ha="center", va="center", transform=ax1.transAxes)
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
    pure_ms = report["summary"]["pure_ms"]
    ax2.set_title("Per-stage time" + ("" if pure_ms is None else f" (pure inference {pure_ms:.1f} ms)"))
    ax2.tick_params(axis="x", labelsize=7)
    # Below the axes: inside, the legend hid the 1920x1080 straightforward marker (top right).
    ax2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=5, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _ms(row: dict[str, Any] | None, key: str = "median") -> str:
    return "n/a" if row is None else f"{row[key]:.1f} ms"


# The labels' path through the node, in order, then the sums and the work off that path.
STAGE_ROWS = (
    ("camera_send", "camera: stamp → DDS write (the camera process, not the node)"),
    ("dds_transport", "DDS in: write → the node's reader has it"),
    ("take", "DDS in: reader → subscription callback (take, deserialise)"),
    ("queue", "one-slot buffer: callback → worker takes it"),
    ("decode", "message → frame (a numpy view)"),
    ("segment", "segment (Segmenter)"),
    ("build", "frame → labels message"),
    ("publish", "labels publish call"),
    ("dds_out_transport", "DDS out: publish returned → the recorder's reader has it"),
    ("recorder_take", "DDS out: reader → recorder callback (the recorder's take)"),
    ("dds_in", "= DDS in (stamp → callback)"),
    ("in_node", "= in the node (callback → labels published)"),
    ("dds_out", "= DDS out (publish returned → recorder callback)"),
    ("end_to_end", "= end to end (stamp → recorder)"),
    ("other_outputs", "other outputs after labels (off the labels' path)"),
)


def _stage_budget(node: dict[str, Any]) -> list[str]:
    """The per-stage p50/p95 table of both node phases (empty where no stage times arrived)."""
    phases = [(n, node.get(k, {}).get("stages_ms", {})) for n, k in (("camera rate", "30hz"), ("overload", "overload"))]
    if not any(stages for _, stages in phases):
        return []
    lines = [
        "| stage (labels' path) | camera rate p50 | p95 | overload p50 | p95 |",
        "|---|---|---|---|---|",
    ]
    for key, label in STAGE_ROWS:
        cells = []
        for _, stages in phases:
            row = stages.get(key)
            cells += ["n/a", "n/a"] if row is None else [f"{row['p50']:.2f} ms", f"{row['p95']:.2f} ms"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _memory_lines(s: dict[str, Any]) -> list[str]:
    if s.get("rss_growth_mb") is None:
        return []
    return [
        f"Node RSS over both phases: {s['rss_mb_start']:.1f} MB after the first warm-up → {s['rss_mb_end']:.1f} MB "
        f"at the end (peak {s['rss_mb_peak']:.1f} MB), a rise of {s['rss_rise_mb']:+.1f} MB: steady growth "
        f"{s['rss_growth_mb']:+.1f} MB, one-time steps {s['rss_one_time_mb']:+.1f} MB ({s['rss_verdict']}).",
        "",
    ]


def _floor_lines(floor: dict[str, Any] | None, s: dict[str, Any]) -> list[str]:
    """One sentence: the DDS floor (the echo process in the node's place) beside the node's excess."""
    if floor is None:
        return []
    if "latency_ms" not in floor:
        return [f"DDS floor: failed: {floor.get('error', 'no answers')}.", ""]
    lat = floor["latency_ms"]
    text = (
        f"DDS floor (bench/echo_node.py in the node's place: the same camera and recorder, outputs of the "
        f"camera's size answered at once, no model): p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, "
        f"{floor['answered']} of {floor['sent']} answered at {floor['rate_hz']:.0f} Hz."
    )
    if s.get("node_own_ms") is not None:
        text += (
            f" The node's p50 is {s['node_over_pipeline_ms']:.1f} ms above the pipeline; less its own `segment` "
            f"p50 and this floor, {s['node_own_ms']:.1f} ms is the node's own (hand-off, decode, build)."
        )
    return [text, ""]


def markdown(report: dict[str, Any]) -> str:
    """The README's performance section, generated from one report (n/a where a measurement failed)."""
    m, s = report["machine"], report["summary"]
    lines = [
        f"Measured by `seg-perception bench` on {m['cpu']} ({m['cores']} cores, no GPU), ONNX Runtime "
        f"{m['onnxruntime']}, model `{report['model']}`, {report['settings']['frames']} repeats per offline "
        f"measurement (medians; p10–p90 in brackets), node phases of {report['settings']['node_seconds']:.0f} s.",
        "",
        *[
            f"Camera size {x['requested']} benched as {x['benched']}: {x['reason']}.\n"
            for x in report["settings"].get("size_substitutions", [])
        ],
        "| camera size | pipeline (labels + drivable) | + overlay | straightforward | speed-up |",
        "|---|---|---|---|---|",
    ]
    by = {(x["name"], x["size"]): x for x in report["measurements"]}
    for size in report["settings"]["sizes"]:
        pipe, over, base = (by.get((n, size)) for n in ("pipeline", "pipeline_overlay", "straightforward"))
        spread = "" if pipe is None else f" ({pipe['p10']:.1f}–{pipe['p90']:.1f})"
        speedup = "n/a" if pipe is None or base is None else f"{base['median'] / pipe['median']:.2f}×"
        lines.append(f"| {size} | {_ms(pipe)}{spread} | {_ms(over)} | {_ms(base)} | {speedup} |")
    pure = next((x for x in report["measurements"] if x["name"] == "pure_inference"), None)
    if pure is not None:
        lines += ["", f"Pure inference (the model alone on a ready tensor, {pure['size']}): {_ms(pure)}."]
    health = [x for x in report["measurements"] if x["name"] == "health_checks"]
    if health:
        sizes = ", ".join(f"{x['median']:.3f} ms at {x['size']}" for x in health)
        lines += ["", f"Health checks (every check of core/health.py on one frame; budget 0.3 ms): {sizes}."]
    lines.append("")
    for skipped in report.get("skipped", []):
        lines += [f"Skipped: {skipped['phase']}: {skipped['reason']}.", ""]
    if report.get("node"):
        size = report["settings"].get("summary_size", "1280x720")
        lines += [
            f"| node over DDS, {size} | rate in | answered | dropped | p50 | p95 | p99 | max | out fps | CPU | RSS |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, d in (("camera rate", report["node"]["30hz"]), ("overload", report["node"]["overload"])):
            if "latency_ms" not in d:
                lines.append(
                    f"| {name} | {d['rate_hz']:.0f} Hz | {d['answered']} | {d['dropped']} | failed: "
                    f"{d.get('error', '')} | | | | | | |"
                )
                continue
            lat = d["latency_ms"]
            lines.append(
                f"| {name} | {d['rate_hz']:.0f} Hz | {d['answered']} | {d['dropped']} | {lat['p50']:.1f} ms | "
                f"{lat['p95']:.1f} ms | {lat['p99']:.1f} ms | {lat['max']:.1f} ms | {d['output_fps']:.1f} | "
                f"{d['cpu_percent']:.0f} % | {d['rss_mb_start']:.0f}→{d['rss_mb_end']:.0f} MB |"
            )
        lines += ["", *_memory_lines(s)]
        lines += _floor_lines(report["node"].get("dds_floor"), s)
        lines += _stage_budget(report["node"])
    if report.get("message_path"):
        lines += [markdown_line(report["message_path"]), ""]
    if report.get("multi_camera"):
        ratios = ", ".join(f"{x['cameras']} cameras {x['throughput_ratio']:.2f}×" for x in report["multi_camera"])
        lines += [
            f"Multi-camera batching ({report['multi_camera'][0]['size']}), throughput of one batched call "
            f"over N single-frame calls: {ratios}.",
            "",
        ]
    for failure in report.get("failures", []):
        lines += [f"Failed: {failure['phase']} at {failure['size']}: {failure['error']}.", ""]
    verdict = {True: "yes", False: "**no**", None: "n/a", NOISY: "noisy"}
    conditions = report.get("conditions", {})
    if conditions:
        loads = ", ".join(f"{x:.1f}" for x in conditions.get("load_average_1min", []))
        lines += [f"Load average (1 min) over the run: {loads} on {report['machine']['cores']} cores.", ""]
    if s.get("noise"):
        lines += [
            "**Noisy run**: the timing targets below are neither met nor missed: " + "; ".join(s["noise"]) + ".",
            "",
        ]
    lines += [f"| target ({s['size']}) | met |", "|---|---|"]
    lines += [f"| {k} | {verdict[v]} |" for k, v in s["targets"].items()]
    return "\n".join(lines) + "\n"
