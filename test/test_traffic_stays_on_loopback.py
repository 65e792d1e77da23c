"""Test traffic stays on the loopback range: while a Ray that the package starts runs tasks, and while the
node segments frames over DDS, every socket of this test's process tree (Ray's GCS, raylet and workers;
the node; this process's own DDS participant) is bound and connected to 127.0.0.0/8 (or ::1) only.

Read from /proc (`socket_census.py`), sampled several times while the work runs. The one allowance: a DDS
participant keeps unconnected UDP *send* sockets on an ephemeral port, which no locator advertises and
nothing can reach; every socket DDS receives on (its well-known ports, below the ephemeral range) and every
TCP socket, listening or connected, must be on loopback.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from ros_harness import image_msg, node_with_probe, unique_domain_id
from socket_census import Endpoint, endpoints, is_loopback, outside_loopback, process_tree

from seg_perception.fleet.ray_runtime import LOCAL, ray_session

SAMPLES = 5
EPHEMERAL_LOW = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def _sample(pid: int) -> tuple[list[Endpoint], list[Endpoint]]:
    """(every socket seen, those outside loopback), over a few samples of `pid`'s process tree."""
    seen: list[Endpoint] = []
    outside: list[Endpoint] = []
    for _ in range(SAMPLES):
        seen += [e for p in process_tree(pid) for e in endpoints(p)]
        outside += outside_loopback(pid)
        time.sleep(0.2)
    return seen, outside


def _reachable(e: Endpoint) -> bool:
    """Whether another host could reach or be reached by this socket (see the module docstring)."""
    send_only = e.protocol.startswith("udp") and e.remote is None and e.local_port >= EPHEMERAL_LOW
    return not send_only


def _described(e: Endpoint) -> str:
    return f"pid {e.pid} {e.command} {e.protocol} {e.local}:{e.local_port} -> {e.remote}:{e.remote_port}"


def test_a_ray_the_package_starts_listens_and_connects_on_loopback_only() -> None:
    with ray_session(LOCAL, num_cpus=1) as ray:

        @ray.remote
        def worker_pid() -> int:
            return os.getpid()

        assert ray.get(worker_pid.remote()) != os.getpid()  # a real worker process answered
        seen, outside = _sample(os.getpid())
    ray_sockets = [e for e in seen if e.command in ("gcs_server", "raylet") or e.command.startswith("ray::")]
    assert any(e.listening for e in ray_sockets), "no Ray listener was seen: the census sees nothing"
    # The tree includes this pytest process, which may still hold a DDS participant of an earlier in-process
    # test until the garbage collector frees it: its send-only UDP sockets (0.0.0.0 and the host's address,
    # ephemeral ports, unconnected) are the one allowance, as for the node below. Ray's own node-address probe
    # is a *connected* UDP socket and stays an offence.
    reachable = [e for e in outside if _reachable(e)]
    assert not reachable, "\n".join(sorted({_described(e) for e in reachable}))


def test_the_node_and_its_peers_use_loopback_for_dds() -> None:
    domain = unique_domain_id()
    with node_with_probe(domain, {"backend": "onnxruntime"}) as (_node, probe):
        frame = np.zeros((90, 160, 3), np.uint8)
        for i in range(5):
            probe.image_pub.publish(image_msg(frame, "rgb8", 1_000_000_000 + i))
        probe.wait_until(lambda: len(probe.messages("labels")) > 0, 60.0, "labels")
        seen, outside = _sample(os.getpid())
    udp = [e for e in seen if e.protocol.startswith("udp") and _reachable(e)]
    assert udp, "no DDS receive socket was seen: the census sees nothing"
    assert all(is_loopback(e.local) for e in udp)
    reachable = [e for e in outside if _reachable(e)]
    assert not reachable, "\n".join(sorted({_described(e) for e in reachable}))


def test_the_census_allows_a_dds_participants_send_sockets_and_nothing_else() -> None:
    """The allowance the two tests above apply, on sockets made here: a DDS participant this process holds
    (as one an earlier in-process test left for the garbage collector does) has unconnected UDP send sockets
    on 0.0.0.0 and the host's address, which pass; a TCP listener and a UDP receive socket on 0.0.0.0 below
    the ephemeral range do not."""
    import socket

    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context, domain_id=unique_domain_id())
    node = rclpy.create_node("census_probe", context=context)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        for port in range(EPHEMERAL_LOW - 1000, EPHEMERAL_LOW):
            try:
                receiver.bind(("0.0.0.0", port))
                break
            except OSError:
                continue
        else:
            pytest.fail(f"no free UDP port in [{EPHEMERAL_LOW - 1000}, {EPHEMERAL_LOW}) to plant a receive socket on")
        _seen, outside = _sample(os.getpid())
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        planted = {listener.getsockname()[1], receiver.getsockname()[1]}
        listener.close()
        receiver.close()
    send_only = [e for e in outside if not _reachable(e)]
    assert send_only and all(e.protocol == "udp" and e.remote is None for e in send_only)
    assert {e.local_port for e in outside if _reachable(e)} == planted


def test_localhost_discovery_picks_the_loopback_profile_and_keeps_the_large_data_settings() -> None:
    from seg_perception.ros.dds_profile import LOCALHOST_PROFILE_NAME, PROFILE_NAME, profile_name, shipped_profile

    assert profile_name({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}) == LOCALHOST_PROFILE_NAME
    assert profile_name({"ROS_AUTOMATIC_DISCOVERY_RANGE": "localhost "}) == LOCALHOST_PROFILE_NAME
    for other in ({}, {"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}, {"ROS_AUTOMATIC_DISCOVERY_RANGE": "OFF"}):
        assert profile_name(other) == PROFILE_NAME  # peers on other machines: every interface
    wide = shipped_profile({})
    narrow = shipped_profile({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"})
    assert wide is not None and narrow is not None and wide != narrow
    wide_xml, narrow_xml = wide.read_text(), narrow.read_text()
    for setting in ("<segment_size>67108864</segment_size>", "<port_queue_capacity>1024</port_queue_capacity>"):
        assert setting in wide_xml and setting in narrow_xml
    assert "interfaceWhiteList" not in wide_xml  # the shipped profile never pins an interface
    assert "<address>127.0.0.1</address>" in narrow_xml
