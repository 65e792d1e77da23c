#!/usr/bin/env bash
# Build a scratch environment with the genuine `ros2 launch` (launch, launch_ros, ros2launch, ros2cli, ros2pkg
# from their sources) over the Kilted rclpy wheels, plus this package colcon-built into an install space, so
# `ros2 launch seg_perception seg_perception.launch.py` can be tried for real. Nothing of it enters this
# repository; `make test` never runs it (it needs the ROS sources and a few minutes).
#
# Usage: tools/real_ros2_launch_env.sh [SCRATCH]      (default SCRATCH=/work/scratch/real_launch)
#   needs: python3.11, git, cmake, a C compiler; the ROS sources as git repositories (bare or not) in
#   LAUNCH_REPO, LAUNCH_ROS_REPO, ROS2CLI_REPO, RCL_INTERFACES_REPO (clones of github.com/ros2/<name>),
#   checked out at REF (default rolling).
# Then:  . SCRATCH/env.sh && ros2 launch seg_perception seg_perception.launch.py model:=...
set -euo pipefail

HERE="$(cd "$(dirname "$0")/.." && pwd)"
SCRATCH="${1:-/work/scratch/real_launch}"
REF="${REF:-rolling}"
PYTHON="${PYTHON:-python3.11}"
LAUNCH_REPO="${LAUNCH_REPO:-/work/.mirror/ros2+launch/repo}"
LAUNCH_ROS_REPO="${LAUNCH_ROS_REPO:-/work/.mirror/ros2+launch_ros/repo}"
ROS2CLI_REPO="${ROS2CLI_REPO:-/work/.mirror/ros2+ros2cli/repo}"
RCL_INTERFACES_REPO="${RCL_INTERFACES_REPO:-/work/.mirror/ros2+rcl_interfaces/repo}"

mkdir -p "$SCRATCH/src"
VENV="$SCRATCH/venv"
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
# The same pinned Kilted wheels, ONNX Runtime etc. as the project's own venv (and colcon for the builds below).
test -f "$VENV/.requirements-done" || { "${PIP[@]}" -r "$HERE/requirements.txt" -r "$HERE/requirements-kilted.txt" -c "$HERE/constraints.txt" && touch "$VENV/.requirements-done"; }
# What launch, launch_ros and ros2cli import (their package.xml exec_depends), from PyPI; lark comes with
# the rosidl wheels (lark-parser).
"${PIP[@]}" osrf-pycommon==2.0.2 argcomplete==3.7.2 psutil==7.2.2 importlib-metadata==10.2.0

unpack() {  # repo dest: the REF tree of a git repository
    rm -rf "$2" && mkdir -p "$2" && git -C "$1" archive "$REF" | tar -x -C "$2"
    echo "$(basename "$2") $(git -C "$1" rev-parse "$REF")" >>"$SCRATCH/versions.txt"
}
: >"$SCRATCH/versions.txt"
unpack "$LAUNCH_REPO" "$SCRATCH/src/launch"
unpack "$LAUNCH_ROS_REPO" "$SCRATCH/src/launch_ros"
unpack "$ROS2CLI_REPO" "$SCRATCH/src/ros2cli"
unpack "$RCL_INTERFACES_REPO" "$SCRATCH/src/rcl_interfaces"

# The pure-Python packages, straight from their sources (their setup.py installs the ament index markers).
for pkg in launch/launch launch/launch_xml launch/launch_yaml launch_ros/launch_ros launch_ros/ros2launch \
    ros2cli/ros2cli ros2cli/ros2pkg; do
    "${PIP[@]}" --no-deps --no-build-isolation "$SCRATCH/src/$pkg"
done

export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH" COLCON_HOME="$SCRATCH/colcon_home"
# The wheels' exported CMake targets name their builder's Python include directory; point them at this one's.
INCLUDE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
grep -rl /opt/python/cp311-cp311/ "$VENV/share" | xargs -r sed -i -e "s#/opt/python/cp311-cp311/include/python3.11#$INCLUDE#g" \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages#$SITE#g"
# composition_interfaces (launch_ros imports it) is messages: rosidl-generated like the tests' vision_msgs.
rm -rf "$SCRATCH/ws" && mkdir -p "$SCRATCH/ws/src"
cp -r "$SCRATCH/src/rcl_interfaces/composition_interfaces" "$SCRATCH/ws/src/"
# This package, as a user's workspace has it (its tracked files only).
mkdir -p "$SCRATCH/ws/src/seg_perception"
(cd "$HERE" && git ls-files -z | xargs -0 cp --parents -t "$SCRATCH/ws/src/seg_perception")
(cd "$SCRATCH/ws" && colcon build --cmake-args "-DPython3_EXECUTABLE=$VENV/bin/python" -DBUILD_TESTING=OFF \
    >"$SCRATCH/colcon_build.log" 2>&1) || { tail -40 "$SCRATCH/colcon_build.log"; exit 1; }

cat >"$SCRATCH/env.sh" <<EOF
# Source me: the scratch venv's ros2 and the colcon install space (composition_interfaces, seg_perception).
export PATH="$VENV/bin:\$PATH" AMENT_PREFIX_PATH="$VENV"
. "$SCRATCH/ws/install/local_setup.sh"
EOF
"$VENV/bin/python" -m pip list --disable-pip-version-check 2>/dev/null \
    | grep -E -i '^(launch|launch-ros|launch_ros|ros2launch|ros2cli|ros2pkg|osrf|lark|ros-kilted-rclpy) ' \
    >>"$SCRATCH/versions.txt" || true
cat "$SCRATCH/versions.txt"
echo "ready: . $SCRATCH/env.sh && ros2 launch seg_perception seg_perception.launch.py --show-args"
