"""The inet sockets of a process tree, read from /proc (no psutil): which addresses each one is bound and
connected to. Used by the loopback guard: test traffic stays on 127.0.0.0/8 (and ::1)."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TABLES = {"tcp": socket.AF_INET, "udp": socket.AF_INET, "tcp6": socket.AF_INET6, "udp6": socket.AF_INET6}
TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Endpoint:
    """One socket of one process: protocol, local and remote address (remote None when unconnected)."""

    pid: int
    command: str
    protocol: str
    local: str
    local_port: int
    remote: str | None
    remote_port: int
    listening: bool


def _address(hex_ip: str, family: int) -> str:
    raw = bytes.fromhex(hex_ip)
    if family == socket.AF_INET:
        return socket.inet_ntop(family, struct.pack("<I", struct.unpack(">I", raw)[0]))
    # /proc writes an IPv6 address as four host-order 32-bit words
    words = struct.unpack(">4I", raw)
    return socket.inet_ntop(family, struct.pack("<4I", *words))


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback (::ffff:127.0.0.1). A wildcard (0.0.0.0, ::) is not."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (from /proc/<pid>/task/<tid>/children)."""
    seen, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        for task in (PROC / str(pid) / "task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    return seen


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in (PROC / str(pid) / "fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def endpoints(pid: int) -> list[Endpoint]:
    """Every inet socket `pid` holds open now (empty once it has exited)."""
    inodes = _socket_inodes(pid)
    if not inodes:
        return []
    try:
        command = (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return []
    found = []
    for table, family in TABLES.items():
        try:
            lines = (PROC / str(pid) / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[9]) not in inodes:
                continue
            local_ip, local_port = fields[1].split(":")
            remote_ip, remote_port = fields[2].split(":")
            remote = _address(remote_ip, family)
            unconnected = int(remote_port, 16) == 0
            found.append(
                Endpoint(
                    pid,
                    command,
                    table,
                    _address(local_ip, family),
                    int(local_port, 16),
                    None if unconnected else remote,
                    int(remote_port, 16),
                    table.startswith("tcp") and fields[3] == TCP_LISTEN,
                )
            )
    return found


def outside_loopback(root: int) -> list[Endpoint]:
    """The sockets of `root`'s process tree bound or connected to an address outside the loopback range."""
    return [
        e
        for pid in process_tree(root)
        for e in endpoints(pid)
        if not is_loopback(e.local) or (e.remote is not None and not is_loopback(e.remote))
    ]
