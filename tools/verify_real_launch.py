"""Verify the launch file with the genuine `ros2 launch` (issue 22's "Found with the real ros2 launch" items).

Needs the scratch environment tools/real_ros2_launch_env.sh builds (launch, launch_ros, ros2launch, ros2cli from
their sources over the Kilted rclpy wheels). This script colcon-builds THIS checkout's package (its tracked
files, as they are in the working tree) into an overlay workspace SCRATCH/ws_verify, then runs each check
against `ros2 launch seg_perception seg_perception.launch.py` on a private, localhost-only DDS domain and prints
PASS or FAIL per item; every launch's output is kept under SCRATCH/verify_logs. Not run by `make test`.

    python3 tools/verify_real_launch.py [--scratch /work/scratch/real_launch] [--skip-build] [--only 1,4]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
INNER = "SEG_PERCEPTION_VERIFY_INNER"
LAUNCH = ["ros2", "launch", "seg_perception", "seg_perception.launch.py"]
WIDTH, HEIGHT = 640, 480


# --- outer: build the overlay and re-run inside the scratch environment --------------------------------------


def _build(scratch: Path, source: Path) -> None:
    ws = scratch / "ws_verify"
    src = ws / "src" / "seg_perception"
    subprocess.run(["rm", "-rf", str(ws)], check=True)
    src.mkdir(parents=True)
    files = subprocess.run(["git", "ls-files", "-z"], cwd=source, check=True, capture_output=True).stdout
    subprocess.run(["xargs", "-0", "cp", "--parents", "-t", str(src)], cwd=source, input=files, check=True)
    script = f". {shlex.quote(str(scratch / 'env.sh'))} && cd {shlex.quote(str(ws))} && colcon build"
    log = scratch / "colcon_build_verify.log"
    with open(log, "w") as out:
        done = subprocess.run(["bash", "-c", script], stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        sys.exit(f"colcon build of {source} failed: see {log}")


def _scratch_environment(scratch: Path) -> dict[str, str]:
    overlay = scratch / "ws_verify" / "install" / "local_setup.sh"
    script = f". {shlex.quote(str(scratch / 'env.sh'))} && . {shlex.quote(str(overlay))} && env -0"
    text = subprocess.run(["bash", "-c", script], check=True, capture_output=True).stdout.decode()
    return dict(line.split("=", 1) for line in text.split("\0") if "=" in line)


def outer(args: argparse.Namespace) -> int:
    scratch = Path(args.scratch)
    if not (scratch / "env.sh").is_file():
        sys.exit(f"{scratch}/env.sh not found: build the scratch environment with tools/real_ros2_launch_env.sh")
    if not args.skip_build:
        say(f"building {args.source} into {scratch}/ws_verify ...")
        _build(scratch, Path(args.source))
    env = _scratch_environment(scratch)
    env[INNER] = "1"
    python = str(scratch / "venv" / "bin" / "python")
    # This file, in the scratch interpreter; seg_perception imports from the overlay just built.
    return subprocess.run([python, str(Path(__file__).resolve()), *sys.argv[1:]], env=env).returncode


# --- inner: the checks ----------------------------------------------------------------------------------------


class Launch:
    """`ros2 launch ...` in its own process group (as from a terminal), output collected to a log file."""

    def __init__(self, name: str, arguments: list[str], env: dict[str, str], logs: Path) -> None:
        self.log = logs / f"{name}.log"
        self.out = open(self.log, "w")  # noqa: SIM115 - closed in wait()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [*LAUNCH, *arguments], env=env, stdout=self.out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.elapsed = 0.0

    @property
    def output(self) -> str:
        if not self.out.closed:
            self.out.flush()
        return self.log.read_text()

    def wait(self, timeout: float) -> int | None:
        try:
            code: int | None = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
            self.kill()
        self.elapsed = time.monotonic() - self.started
        self.out.close()
        return code

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)
        self.proc.wait()


def processes_on_domain(domain: int) -> list[str]:
    """Processes of this machine whose environment holds our ROS_DOMAIN_ID (what a failed launch left behind)."""
    import psutil

    found = []
    marker = str(domain)
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if p.pid != os.getpid() and p.environ().get("ROS_DOMAIN_ID") == marker:
                found.append(f"{p.pid} {' '.join(p.info['cmdline'] or [])}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def rviz_files() -> set[str]:
    return set(glob.glob(os.path.join(os.environ.get("TMPDIR", "/tmp"), "seg_perception_*.rviz")))


class Camera:
    """A camera driver publishing Image and CameraInfo best effort (sensor-data QoS), recording our outputs."""

    def __init__(self, domain: int) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image

        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("fake_camera", context=self.context)
        self.image_pub = self.node.create_publisher(Image, "/camera/image_raw", qos_profile_sensor_data)
        self.info_pub = self.node.create_publisher(CameraInfo, "/camera/camera_info", qos_profile_sensor_data)
        self.labels: list[Any] = []
        self.infos: list[Any] = []
        self.node.create_subscription(Image, "/camera/segmentation/labels", self.labels.append, 10)
        self.node.create_subscription(CameraInfo, "/camera/segmentation/camera_info", self.infos.append, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.sent = 0
        self._image = Image(height=HEIGHT, width=WIDTH, encoding="rgb8", step=WIDTH * 3)
        self._image.data = bytes(range(256)) * (WIDTH * HEIGHT * 3 // 256)
        self._info = CameraInfo(height=HEIGHT, width=WIDTH, distortion_model="plumb_bob")
        self._info.k = [500.0, 0.0, WIDTH / 2, 0.0, 500.0, HEIGHT / 2, 0.0, 0.0, 1.0]

    def spin_for(self, seconds: float, rate_hz: float = 10.0, until: Callable[[], bool] | None = None) -> None:
        deadline = time.monotonic() + seconds
        next_frame = time.monotonic()
        while time.monotonic() < deadline and not (until and until()):
            if time.monotonic() >= next_frame:
                stamp = self.node.get_clock().now().to_msg()
                self._image.header.stamp = self._info.header.stamp = stamp
                self._image.header.frame_id = self._info.header.frame_id = "camera_optical"
                self.image_pub.publish(self._image)
                self.info_pub.publish(self._info)
                self.sent += 1
                next_frame += 1.0 / rate_hz
            self.executor.spin_once(timeout_sec=0.01)

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _tail(text: str, lines: int = 6) -> str:
    return "\n".join("      | " + line for line in text.strip().splitlines()[-lines:])


def _line(text: str, needle: str) -> str:
    return next((line.strip() for line in text.splitlines() if needle in line), "(no such line)")


class Checks:
    def __init__(self, logs: Path) -> None:
        from seg_perception.ros.domain_ids import reserve_domain_id

        self.logs = logs
        self.domain = reserve_domain_id()
        self.env = dict(os.environ, ROS_DOMAIN_ID=str(self.domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env.pop(INNER, None)
        for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"):
            self.env.pop(name, None)  # the launch file's own default (the shipped profile) is what is checked
        from ament_index_python.packages import get_package_share_directory

        self.share = Path(get_package_share_directory("seg_perception"))
        from seg_perception.ros.dds_profile import profile_name

        # The launch file's default follows ROS_AUTOMATIC_DISCOVERY_RANGE (LOCALHOST here: the loopback variant).
        self.profile = str(self.share / "config" / profile_name(self.env))
        # This process's own participant (the fake camera) uses the same shipped profile as the node.
        os.environ.update(
            ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
            FASTDDS_DEFAULT_PROFILES_FILE=self.profile,
        )
        os.environ.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
        self.results: list[tuple[str, bool]] = []

    def report(self, item: str, ok: bool, details: list[str], launch: Launch | None = None) -> None:
        self.results.append((item, ok))
        say(f"{'PASS' if ok else 'FAIL'} {item}")
        for d in details:
            say(f"      {d}")
        if launch is not None and not ok:
            say(_tail(launch.output, 20))
        say()

    def leftovers(self) -> list[str]:
        """What a launch left running on our domain; reported, then ended (this script started them)."""
        time.sleep(0.5)
        left = processes_on_domain(self.domain)
        for entry in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.split()[0]), signal.SIGKILL)
        return left

    # item 1 (camera_info best effort) and item 3 (two SIGINTs while frames flow), one launch
    def camera_info_and_two_signals(self) -> None:
        launch = Launch("1_3_camera_info_two_sigints", ["backend:=onnxruntime"], self.env, self.logs)
        camera = Camera(self.domain)
        try:
            camera.spin_for(120.0, until=lambda: len(camera.infos) >= 20 and len(camera.labels) >= 20)
            infos, labels, sent = len(camera.infos), len(camera.labels), camera.sent
            info = camera.infos[-1] if camera.infos else None
            # Frames still flowing: SIGINT to the process group twice, 0.1 s apart (Ctrl-C twice, or a
            # supervisor without a tty while launch forwards its own).
            launch.signal_group(signal.SIGINT)
            camera.spin_for(0.1)
            launch.signal_group(signal.SIGINT)
            start = time.monotonic()
            while launch.proc.poll() is None and time.monotonic() - start < 30:
                camera.spin_for(0.2)
        finally:
            camera.close()
        code = launch.wait(timeout=30)
        took = time.monotonic() - start
        out = launch.output
        incompatible = "incompatible QoS" in out or "offering incompatible" in out
        self.report(
            "1 camera_info from a best-effort CameraInfo publisher -> segmentation/camera_info published",
            infos >= 20 and not incompatible and info is not None and info.header.frame_id == "camera_optical",
            [
                f"sent {sent} frames+infos best effort at 10 Hz ({WIDTH}x{HEIGHT} rgb8); received {labels} labels, "
                f"{infos} segmentation/camera_info (frame_id {info.header.frame_id if info else None!r}); "
                f"incompatible QoS logged: {incompatible}",
                _line(out, "(CameraInfo,"),
                f"label_info warnings (this env has no vision_msgs): {out.count('label_info is not published')}",
            ],
            launch,
        )
        traceback = "Traceback" in out or "KeyboardInterrupt" in out
        left = self.leftovers()
        self.report(
            "3 two SIGINTs 0.1 s apart to the process group while frames flow -> no traceback, conventional exit",
            code in (0, 130) and not traceback and not left,
            [
                f"ros2 launch exit code {code} after {took:.1f} s; traceback/KeyboardInterrupt in output: {traceback};"
                f" processes left: {left or 'none'}",
                _line(out, "process has finished cleanly")
                if "process has finished cleanly" in out
                else _line(out, "process has died"),
            ],
            launch,
        )

    # item 2: rviz:=true where rviz2 is not installed
    def rviz_without_rviz2(self) -> None:
        from ament_index_python.packages import PackageNotFoundError, get_package_prefix

        try:
            get_package_prefix("rviz2")
            self.report("2 rviz:=true without rviz2", False, ["rviz2 IS installed here: cannot check this item"])
            return
        except PackageNotFoundError:
            pass
        before = rviz_files()
        launch = Launch("2_rviz_without_rviz2", ["rviz:=true"], self.env, self.logs)
        code = launch.wait(timeout=60)
        out = launch.output
        left = self.leftovers()
        new_files = sorted(rviz_files() - before)
        started = "seg_perception_node-" in out
        self.report(
            "2 rviz:=true without rviz2 -> refused before anything starts, no orphan, no rviz file left",
            code == 1 and not left and not new_files and not started,
            [
                f"ros2 launch exit code {code} after {launch.elapsed:.1f} s; node started: {started}; "
                f"processes left: {left or 'none'}; new /tmp/seg_perception_*.rviz: {new_files or 'none'}",
                _line(out, "rviz2"),
            ],
            launch,
        )

    # item 2, the other half: with an rviz2 (a stand-in executable) the config is written and removed at shutdown
    def rviz_config_removed(self) -> None:
        prefix = self.logs / "fake_rviz2_prefix"
        (prefix / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True, exist_ok=True)
        (prefix / "share" / "ament_index" / "resource_index" / "packages" / "rviz2").touch()
        (prefix / "share" / "rviz2").mkdir(parents=True, exist_ok=True)
        exe = prefix / "lib" / "rviz2" / "rviz2"
        exe.parent.mkdir(parents=True, exist_ok=True)
        exe.write_text(
            '#!/bin/sh\n# stand-in for rviz2: shows its -d config, then waits\necho "config: $2"\nexec sleep 600\n'
        )
        exe.chmod(0o755)
        env = dict(self.env, AMENT_PREFIX_PATH=f"{prefix}{os.pathsep}{self.env.get('AMENT_PREFIX_PATH', '')}")
        before = rviz_files()
        launch = Launch("2b_rviz_config_removed", ["rviz:=true", "backend:=onnxruntime"], env, self.logs)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "warm-up on" not in launch.output and launch.proc.poll() is None:
            time.sleep(0.2)
        written = sorted(rviz_files() - before)
        launch.signal_group(signal.SIGINT)
        code = launch.wait(timeout=30)
        left = self.leftovers()
        remaining = sorted(rviz_files() - before)
        self.report(
            "2b rviz:=true with an rviz2 (stand-in executable) -> config written, removed at shutdown",
            len(written) == 1 and not remaining and code == 0 and not left,
            [
                f"written while running: {written or 'none'}; left after SIGINT: {remaining or 'none'}; "
                f"ros2 launch exit code {code}; processes left: {left or 'none'}",
            ],
            launch,
        )

    # item 4: a node that cannot start ends the launch
    def node_cannot_start(self) -> None:
        launch = Launch("4_nonexistent_model", ["model:=/nonexistent.yaml"], self.env, self.logs)
        code = launch.wait(timeout=120)
        out = launch.output
        left = self.leftovers()
        self.report(
            "4 model:=/nonexistent.yaml -> launch ends promptly with a nonzero exit",
            code == 1 and "exited with status 2" in out and not left,
            [
                f"ros2 launch exit code {code} after {launch.elapsed:.1f} s (the node's own import and start "
                f"included); processes left: {left or 'none'}",
                _line(out, "cannot start"),
                _line(out, "Caught exception in launch"),
            ],
            launch,
        )

    # item 4, the other half: a node killed while running ends the launch too
    def node_killed(self) -> None:
        import re

        launch = Launch("4b_node_killed", ["backend:=onnxruntime"], self.env, self.logs)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "warm-up on" not in launch.output and launch.proc.poll() is None:
            time.sleep(0.2)
        found = re.search(r"seg_perception_node-1\]: process started with pid \[(\d+)\]", launch.output)
        if found:
            os.kill(int(found.group(1)), signal.SIGKILL)
        code = launch.wait(timeout=60)
        out = launch.output
        left = self.leftovers()
        self.report(
            "4b the node killed (SIGKILL) while running -> launch ends with a nonzero exit",
            found is not None and code == 1 and "exited with status -9 (killed by signal 9)" in out and not left,
            [
                f"ros2 launch exit code {code}; processes left: {left or 'none'}",
                _line(out, "Caught exception in launch"),
            ],
            launch,
        )

    # item 5: --show-args shows the profile path; a missing params_file is refused in one line
    def show_args_and_params_file(self) -> None:
        launch = Launch("5a_show_args", ["--show-args"], self.env, self.logs)
        code = launch.wait(timeout=60)
        out = launch.output
        lines = out.splitlines()
        at = next((i for i, line in enumerate(lines) if "'fastdds_profile':" in line), None)
        default = next((line.strip() for line in lines[at:] if "(default:" in line), "") if at is not None else ""
        self.report(
            "5a --show-args shows the fastdds_profile default as the file that will be used",
            code == 0 and default == f"(default: '{self.profile}')" and "EnvVar" not in out,
            [f"exit code {code}; fastdds_profile {default or '(not shown)'}"],
            launch,
        )
        env = dict(self.env, FASTDDS_DEFAULT_PROFILES_FILE="/etc/my_profile.xml")
        launch = Launch("5a_show_args_variable_set", ["--show-args"], env, self.logs)
        code = launch.wait(timeout=60)
        lines = launch.output.splitlines()
        at = next((i for i, line in enumerate(lines) if "'fastdds_profile':" in line), None)
        default = next((line.strip() for line in lines[at:] if "(default:" in line), "") if at is not None else ""
        self.report(
            "5a' --show-args with FASTDDS_DEFAULT_PROFILES_FILE set shows that file",
            code == 0 and default == "(default: '/etc/my_profile.xml')",
            [f"exit code {code}; fastdds_profile {default or '(not shown)'}"],
            launch,
        )
        launch = Launch("5b_missing_params_file", ["params_file:=/nonexistent_params.yaml"], self.env, self.logs)
        code = launch.wait(timeout=60)
        out = launch.output
        left = self.leftovers()
        errors = [line for line in out.splitlines() if "[ERROR]" in line or "Traceback" in line]
        started = "seg_perception_node-" in out
        self.report(
            "5b params_file:=/nonexistent_params.yaml -> refused in one line, nothing started",
            code == 1
            and len(errors) == 1
            and "params_file:='/nonexistent_params.yaml': no such file" in errors[0]
            and not started
            and not left,
            [f"exit code {code} after {launch.elapsed:.1f} s; node started: {started}; error lines:", *errors],
            launch,
        )

    # a bad argument value is refused before anything starts, like a missing params_file
    def bad_argument_values(self) -> None:
        # launch checks `choices` itself, and logs its line twice (once as itself, once as the caught exception)
        for name, argument, expected, lines in (
            (
                "5c_use_sim_time_yes",
                "use_sim_time:=yes",
                "launch argument use_sim_time:='yes' must be true or false",
                1,
            ),
            ("5c_backend_cuda", "backend:=cuda", 'Argument "backend" provided value "cuda" is not valid', 2),
        ):
            launch = Launch(name, [argument], self.env, self.logs)
            code = launch.wait(timeout=60)
            out = launch.output
            left = self.leftovers()
            errors = [line for line in out.splitlines() if "[ERROR]" in line or "Traceback" in line]
            started = "seg_perception_node-" in out
            self.report(
                f"5c {argument} -> refused before anything starts, {lines} error line{'s' if lines > 1 else ''}",
                code == 1 and len(errors) == lines and all(expected in e for e in errors) and not started and not left,
                [f"exit code {code}; node started: {started}; error lines:", *errors],
                launch,
            )


def inner(args: argparse.Namespace) -> int:
    logs = Path(args.scratch) / "verify_logs"
    logs.mkdir(exist_ok=True)
    versions = Path(args.scratch) / "versions.txt"
    if versions.is_file():
        say("versions: " + "; ".join(" ".join(line.split()) for line in versions.read_text().splitlines()))
    checks = Checks(logs)
    say(f"ROS_DOMAIN_ID {checks.domain}, package from {checks.share}, logs in {logs}\n")
    items = {
        "1": checks.camera_info_and_two_signals,  # also item 3
        "2": checks.rviz_without_rviz2,
        "2b": checks.rviz_config_removed,
        "4": checks.node_cannot_start,
        "4b": checks.node_killed,
        "5": checks.show_args_and_params_file,
        "5c": checks.bad_argument_values,
    }
    only = args.only.split(",") if args.only else list(items)
    for key in only:
        items[key]()
    failed = [item for item, ok in checks.results if not ok]
    say(f"{len(checks.results) - len(failed)} of {len(checks.results)} checks passed")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", default="/work/scratch/real_launch", help="the scratch environment")
    parser.add_argument("--source", default=str(REPO), help="the checkout to build and verify")
    parser.add_argument("--skip-build", action="store_true", help="reuse SCRATCH/ws_verify as built before")
    parser.add_argument("--only", default="", help="comma-separated items: 1 (with 3), 2, 2b, 4, 4b, 5, 5c")
    args = parser.parse_args()
    return inner(args) if os.environ.get(INNER) else outer(args)


if __name__ == "__main__":
    sys.exit(main())
