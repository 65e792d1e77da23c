"""Read an MCAP file that a crash cut short: no summary, no footer, maybe half a record at the end.

A recorder writes an MCAP file front to back (header, schemas, channels, chunks with their message
indexes) and the summary and footer only when it closes; a killed recorder leaves everything but those.
rosbags refuses such a file (`File end magic is invalid`), so `CutShortMcapReader` gives rosbags' own
reader a view of the file that ends after the last complete record, followed by a footer without a
summary; rosbags then scans the data section as it does for any MCAP without an index. Nothing is copied.
"""

from __future__ import annotations

import functools
import io
import logging
import struct
from pathlib import Path
from typing import Any

from seg_perception.bag.bag_io import warn_once

LOG = logging.getLogger(__name__)

MAGIC = b"\x89MCAP0\r\n"
_OP_HEADER, _OP_DATA_END, _OP_FOOTER = 0x01, 0x0F, 0x02
_MAX_OP = 0x10  # the highest opcode the MCAP spec defines
# DataEnd (crc 0: not checked) and a Footer with no summary (rosbags then scans the data section).
_TAIL = (
    bytes([_OP_DATA_END]) + struct.pack("<QI", 4, 0) + bytes([_OP_FOOTER]) + struct.pack("<QQQI", 20, 0, 0, 0) + MAGIC
)


def complete_records_end(path: Path) -> tuple[int, int]:
    """(end of the last complete record in the data section, file size); ValueError if not an MCAP file."""
    size = path.stat().st_size
    with path.open("rb") as f:
        if f.read(8) != MAGIC:
            raise ValueError("not an MCAP file (no MCAP magic at its start)")
        pos = 8
        while pos + 9 <= size:
            f.seek(pos)
            op, length = struct.unpack("<BQ", f.read(9))
            if op == 0 or op > _MAX_OP or pos + 9 + length > size:
                break  # half a record, or bytes that are no record: the cut
            if op == _OP_DATA_END:
                break
            if pos == 8 and op != _OP_HEADER:
                raise ValueError("not an MCAP file (no header record)")
            pos += 9 + length
    if pos == 8:
        raise ValueError("not an MCAP file (no header record)")
    return pos, size


class _SplicedFile(io.RawIOBase):
    """The first `end` bytes of a file, then `tail`: a read-only, seekable view."""

    def __init__(self, path: Path, end: int, tail: bytes) -> None:
        super().__init__()
        self._file = path.open("rb")
        self._end, self._tail, self._pos = end, tail, 0
        self._size = end + len(tail)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), max(0, self._size - self._pos))
        done = 0
        if self._pos < self._end and want:
            self._file.seek(self._pos)
            n = self._file.readinto(view[: min(want, self._end - self._pos)]) or 0
            done += n
        if done < want:
            start = self._pos + done - self._end
            chunk = self._tail[start : start + want - done]
            view[done : done + len(chunk)] = chunk
            done += len(chunk)
        self._pos += done
        return done

    def close(self) -> None:
        self._file.close()
        super().close()


def _reader_class() -> type:
    from rosbags.rosbag2.errors import ReaderError
    from rosbags.rosbag2.storage_mcap import McapReader

    class CutShortMcapReader(McapReader):  # type: ignore[misc]
        """rosbags' MCAP reader, which also reads the complete records of a file cut short."""

        def open(self) -> None:
            try:
                super().open()
                return
            except ReaderError as exc:
                if "end magic" not in str(exc) and "footer" not in str(exc):
                    raise
            try:
                end, size = complete_records_end(Path(str(self.path)))
            except (OSError, ValueError) as exc:
                raise ReaderError(f"{self.path}: {exc}") from None
            self.bio: Any = io.BufferedReader(_SplicedFile(Path(str(self.path)), end, _TAIL))
            try:
                self._open()
            except BaseException:
                self.close()
                raise
            if not self.metadata.message_count:
                self.close()
                raise ReaderError(
                    f"{self.path} is truncated: cut short before its first complete chunk of messages, so no "
                    f"message can be read ({size} bytes, no MCAP summary)"
                )
            warn_once(
                LOG,
                ("cut", str(self.path), str(size)),
                "%s is cut short (no MCAP summary or footer: a recording that did not finish); reading "
                "its complete records, %d of its %d bytes (%d messages)",
                self.path,
                end,
                size,
                self.metadata.message_count,
            )

    return CutShortMcapReader


@functools.cache
def reader_classes() -> tuple[type, type]:
    """rosbags' Reader and DirectoryReader with CutShortMcapReader as their MCAP storage plugin."""
    from rosbags.rosbag2.reader import DirectoryReader, Reader

    mcap = _reader_class()

    class _DirectoryReader(DirectoryReader):  # type: ignore[misc]
        STORAGE_PLUGINS = {**DirectoryReader.STORAGE_PLUGINS, "mcap": mcap}  # noqa: RUF012 - rosbags' own

    class _Reader(Reader):  # type: ignore[misc]
        STORAGE_PLUGINS = {**Reader.STORAGE_PLUGINS, "dir": _DirectoryReader, ".mcap": mcap}  # noqa: RUF012

    return _Reader, _DirectoryReader
