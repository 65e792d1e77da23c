"""QoS of the node's outputs, chosen so that Nav2's semantic segmentation costmap layer can consume them.

What that layer subscribes with, read at its source (kiwicampus/semantic_segmentation_layer,
src/semantic_segmentation_layer.cpp, SemanticSegmentationLayer::onInitialize; its version at commit 084337f1
writes `rmw_qos_profile_sensor_data` with `depth = 50` and a reliable, transient-local `rmw_qos_profile_default`
with depth 5; the one at commit 612c61ca writes `nav2::qos::SensorDataQoS(50)` and
`nav2::qos::LatchedSubscriptionQoS(5)`, defined in ros-navigation/navigation2
nav2_ros_common/include/nav2_ros_common/qos_profiles.hpp; both say the same):
  * mask (`segmentation_topic`) and confidence (`confidence_topic`), sensor_msgs/Image: best effort, volatile,
    keep last 50; paired with the point cloud by message_filters::TimeSynchronizer (exact stamps, queue 1000);
  * label_info (`labels_topic`), vision_msgs/LabelInfo: reliable, transient local, keep last 5.
A writer matches a reader when it offers at least what the reader requests, so a reliable writer serves that
best-effort reader too (and rviz's and rosbag2's reliable ones); best effort is the choice that keeps no
resend state at all. label_info is published once, at configure: only reliable + transient local delivers
it to a reader that joins later, and that strongest offer matches every reader, so it is not a parameter.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

RELIABILITY = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}


def stream_qos(reliability: str, depth: int) -> QoSProfile:
    """A per-frame output: keep last `depth`, volatile, `reliability` ('reliable' or 'best_effort')."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=RELIABILITY[reliability])


def latched_qos() -> QoSProfile:
    """The legend and label_info, published once: reliable, transient local, keep last 1."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=1,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


def matched_reliability(offered: list[ReliabilityPolicy]) -> ReliabilityPolicy | None:
    """What `auto` subscribes with, given the reliabilities the topic's publishers offer (None: no publisher yet).

    As rosbag2 does: reliable only when every publisher offers it, since a reliable reader never matches a
    best-effort writer, while a best-effort reader matches both.
    """
    if not offered:
        return None
    if all(r == ReliabilityPolicy.RELIABLE for r in offered):
        return ReliabilityPolicy.RELIABLE
    return ReliabilityPolicy.BEST_EFFORT
