"""Publish a bag's messages over DDS with their recorded timing, passing the serialized bytes through.

Like `ros2 bag play`, without a ROS install beyond rclpy and the message packages: each topic gets a
publisher of its real message class (for type matching and hashes) and `publish(bytes)` sends the
recorded CDR unchanged. Topics whose message package is not installed are skipped with a warning.
"""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import rclpy
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from seg_perception.bag.bag_io import BagError
from seg_perception.bag.bag_reader import open_bag, read_messages

if TYPE_CHECKING:
    from rclpy.publisher import Publisher
    from rosbags.interfaces import Connection

LOG = logging.getLogger(__name__)
PUBLISHER_DEPTH = 10  # what ros2 bag play uses when a bag records no QoS
ACK_TIMEOUT_S = 2.0  # at the end, how long reliable readers get to acknowledge the last messages
# With --wait-for-subscribers: how long the first message of each reliable topic may wait for its
# subscribers' acknowledgement before playing on (the clock of the schedule stands still meanwhile).
HANDSHAKE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ReplayOptions:
    """How to play: which topics, how fast, where to start, and whether to drive /clock."""

    topics: tuple[str, ...] = ()
    rate: float = 1.0
    loop: bool = False
    start_offset_s: float = 0.0
    clock_hz: float | None = None  # publish /clock at this frequency; None: no /clock
    wait_for_subscribers_s: float = 0.0  # before playing, wait this long for every topic to be subscribed


@dataclass
class ReplaySummary:
    """What was published, and how fast compared with the bag's own timing."""

    published: int = 0
    interrupted: bool = False
    clock_messages: int = 0
    topics: int = 0
    skipped_topics: list[str] = field(default_factory=list)
    wall_s: float = 0.0  # first to last publish, summed over loops
    bag_s: float = 0.0  # bag time covered between those publishes

    @property
    def speed(self) -> float:
        """Bag seconds played per wall second; matches --rate when playback kept up."""
        return self.bag_s / self.wall_s if self.wall_s > 0 else 0.0


def message_class(msgtype: str) -> Any | None:
    """The Python class of `pkg/msg/Type`, or None when that package is not installed."""
    parts = msgtype.split("/")
    if len(parts) != 3 or parts[1] != "msg":
        return None
    try:
        module = importlib.import_module(f"{parts[0]}.msg")
    except ImportError:
        return None
    return getattr(module, parts[2], None)


def publisher_qos(conn: Connection) -> QoSProfile:
    """Reliable and volatile unless every recorded publisher offered best effort / transient local."""
    from rosbags.interfaces import QosDurability, QosReliability

    offered = list(getattr(conn.ext, "offered_qos_profiles", []) or [])
    best_effort = bool(offered) and all(q.reliability == QosReliability.BEST_EFFORT for q in offered)
    latched = bool(offered) and all(q.durability == QosDurability.TRANSIENT_LOCAL for q in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=PUBLISHER_DEPTH,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


class _Player:
    """The publishers of one replay and the wall-clock schedule that maps bag time to now."""

    def __init__(self, node: Node, options: ReplayOptions) -> None:
        self.node = node
        self.options = options
        self.publishers: dict[tuple[str, str], Publisher] = {}
        self.clock_pub: Publisher | None = None
        self._unconfirmed: set[int] = set()  # reliable publishers whose first message waits for its acks
        self.summary = ReplaySummary()
        self._bag0 = 0  # bag time (ns) that plays at wall time _wall0
        self._wall0 = 0.0
        self._next_clock = 0.0

    def create_publishers(self, connections: list[Connection]) -> list[Connection]:
        """One publisher per (topic, type); returns the connections that will be played."""
        played = []
        for conn in connections:
            key = (conn.topic, conn.msgtype)
            if key not in self.publishers:
                cls = message_class(conn.msgtype)
                if cls is None:
                    LOG.warning("skipping %s: message type %s is not installed", conn.topic, conn.msgtype)
                    self.summary.skipped_topics.append(conn.topic)
                    continue
                self.publishers[key] = self.node.create_publisher(cls, conn.topic, publisher_qos(conn))
            played.append(conn)
        self.summary.topics = len(self.publishers)
        if self.options.clock_hz is not None:
            from rosgraph_msgs.msg import Clock

            self.clock_pub = self.node.create_publisher(Clock, "/clock", QoSProfile(depth=1))
        return played

    def wait_for_subscribers(self) -> None:
        deadline = time.monotonic() + self.options.wait_for_subscribers_s
        while True:
            publishers = [(topic, pub) for (topic, _), pub in self.publishers.items()]
            if self.clock_pub is not None:  # a use_sim_time node needs the clock before the data
                publishers.append(("/clock", self.clock_pub))
            lonely = [topic for topic, pub in publishers if pub.get_subscription_count() == 0]
            if not lonely:
                # The publisher has matched each subscriber, but a subscriber may not have matched the
                # publisher yet (discovery runs both ways, independently): until it has, it ignores the
                # data, and the history of PUBLISHER_DEPTH messages then loses the first ones. So the first
                # message of each reliable topic waits for the subscribers' acknowledgement.
                self._unconfirmed = {
                    id(pub)
                    for pub in self.publishers.values()
                    if pub.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                }
                return
            if time.monotonic() >= deadline:
                LOG.warning("playing although nothing subscribes to %s", ", ".join(sorted(lonely)))
                return
            time.sleep(0.02)

    def start(self, bag_start_ns: int) -> None:
        self._bag0 = bag_start_ns
        self._wall0 = time.monotonic()
        self._next_clock = self._wall0

    def bag_now_ns(self, wall: float) -> int:
        return self._bag0 + int((wall - self._wall0) * self.options.rate * 1e9)

    def _publish_clock(self, wall: float) -> None:
        from builtin_interfaces.msg import Time
        from rosgraph_msgs.msg import Clock

        if self.clock_pub is None:
            return
        sec, nanosec = divmod(self.bag_now_ns(wall), 1_000_000_000)
        self.clock_pub.publish(Clock(clock=Time(sec=sec, nanosec=nanosec)))
        self.summary.clock_messages += 1

    def sleep_until(self, bag_ns: int) -> None:
        """Sleep until `bag_ns` is due, publishing /clock on its schedule meanwhile."""
        target = self._wall0 + (bag_ns - self._bag0) / 1e9 / self.options.rate
        period = 1.0 / self.options.clock_hz if self.options.clock_hz else None
        while True:
            now = time.monotonic()
            if period is not None and now >= self._next_clock:
                self._publish_clock(now)
                # An absolute schedule, but never a burst of catch-up ticks after a stall.
                self._next_clock = max(self._next_clock + period, now)
            if now >= target:
                return
            wake = min(target, self._next_clock) if period is not None else target
            time.sleep(max(0.0, wake - now))

    def publish(self, conn: Connection, data: bytes) -> None:
        pub = self.publishers[(conn.topic, conn.msgtype)]
        pub.publish(data if isinstance(data, bytes) else bytes(data))
        self.summary.published += 1
        if id(pub) in self._unconfirmed:
            self._unconfirmed.discard(id(pub))
            waited = time.monotonic()
            if not pub.wait_for_all_acked(Duration(nanoseconds=int(HANDSHAKE_TIMEOUT_S * 1e9))):
                LOG.warning(
                    "%s: no acknowledgement of the first message within %.0f s", conn.topic, HANDSHAKE_TIMEOUT_S
                )
            paused = time.monotonic() - waited  # the schedule resumes where it stood: no burst afterwards
            self._wall0 += paused
            self._next_clock += paused

    def wait_for_acks(self) -> None:
        deadline = time.monotonic() + ACK_TIMEOUT_S
        for pub in self.publishers.values():
            if pub.qos_profile.reliability == ReliabilityPolicy.RELIABLE:
                left = max(0.0, deadline - time.monotonic())
                pub.wait_for_all_acked(Duration(nanoseconds=int(left * 1e9)))


def _play_once(player: _Player, reader: Any, connections: list[Connection], start_ns: int, bar: Any) -> None:
    first_wall: float | None = None
    first_bag = last_bag = start_ns
    last_wall = 0.0
    player.start(start_ns)
    try:
        for conn, timestamp, data in read_messages(reader, connections, start=start_ns):
            player.sleep_until(timestamp)
            player.publish(conn, data)
            last_wall, last_bag = time.monotonic(), timestamp
            if first_wall is None:
                first_wall, first_bag = last_wall, timestamp
            bar.update()
    finally:
        if first_wall is not None:
            player.summary.wall_s += last_wall - first_wall
            player.summary.bag_s += (last_bag - first_bag) / 1e9


def replay_bag(bag: Path, options: ReplayOptions) -> ReplaySummary:
    """Play `bag` into the DDS domain of ROS_DOMAIN_ID until it ends (or forever with `loop`)."""
    from tqdm import tqdm

    if not options.rate > 0:
        raise BagError(f"--rate must be positive, got {options.rate}")
    if options.start_offset_s < 0:
        raise BagError(f"--start-offset must not be negative, got {options.start_offset_s}")
    if options.clock_hz is not None and not options.clock_hz > 0:
        raise BagError(f"--clock frequency must be positive, got {options.clock_hz}")
    with open_bag(bag) as reader:
        connections = [c for c in reader.connections if not options.topics or c.topic in options.topics]
        missing = sorted(set(options.topics) - {c.topic for c in connections})
        if missing:
            raise BagError(f"no topic {', '.join(missing)} in {bag}; it has {', '.join(sorted(reader.topics))}")
        start_ns = reader.start_time + int(options.start_offset_s * 1e9)
        # The signal handlers stay Python's: Ctrl-C raises KeyboardInterrupt here, not a context shutdown.
        context = Context()
        rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
        node = Node("seg_perception_replay", context=context, enable_rosout=False, start_parameter_services=False)
        player = _Player(node, options)
        try:
            played = player.create_publishers(connections)
            if not played:
                raise BagError(f"none of the selected topics of {bag} has an installed message type")
            if options.wait_for_subscribers_s > 0:
                player.wait_for_subscribers()
            # Counts in the bag cover all of it; from an offset on, the bar counts without a total.
            total = sum(c.msgcount for c in played) if options.start_offset_s == 0 else None
            try:
                while True:
                    with tqdm(total=total, unit="msg", desc="replay") as bar:
                        _play_once(player, reader, played, start_ns, bar)
                    if not options.loop:
                        break
            except KeyboardInterrupt:
                player.summary.interrupted = True
            player.wait_for_acks()
        finally:
            node.destroy_node()
            rclpy.try_shutdown(context=context)
    return player.summary
