"""Decode one camera topic's compressed video (H.264, H.265, VP9, AV1), one access unit per message.

A recorded video topic is a bitstream cut into messages: a message holds one access unit (all the NAL
units of one picture), pictures arrive in decode order, and a picture that references earlier ones can only
be decoded after them. `VideoStreamDecoder` keeps one PyAV (libavcodec) decoder per topic and gives back
each decoded picture with the token (stamp, header, ...) of the message that carried it, so outputs keep
their message's stamp and frame_id even when B-frames make the decoder return pictures in another order.

* A stream that starts between keyframes (a recording started mid-GOP, a bag cut in two) cannot be
  decoded until its first keyframe: the access units before it are skipped and counted.
* An access unit the decoder refuses (`undecodable_access_unit`), or whose picture it could only conceal
  (`corrupt_picture`: a truncated unit, flagged by libavcodec), is counted under its reason and dropped;
  decoding goes on with the next one. Pictures that reference a damaged one are concealed by libavcodec
  (as a player shows them) and are not flagged, so they are kept.
* Each refused unit comes back from `take_rejected` with its token and reason, so the caller can name it.

Keyframes are found from the bitstream itself for H.264 (an IDR slice, NAL type 5) and H.265 (an IRAP
picture, NAL types 16 to 21); for VP9 and AV1 from the frame header's key-frame bit where the message has
no flag, else the caller's flag. PyAV is imported lazily: only a bag with a video topic needs it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

import numpy as np

from seg_perception.core.errors import ImageCodecError
from seg_perception.core.image_cdr import FrameHeader

T = TypeVar("T")

UNKNOWN_CODEC: Final = "unknown_video_format"
EMPTY: Final = "empty_access_unit"
UNDECODABLE: Final = "undecodable_access_unit"
CORRUPT: Final = "corrupt_picture"
NO_PICTURE: Final = "no_picture"  # the decoder took the access unit but never returned its picture
BEFORE_KEYFRAME: Final = "before_first_keyframe"  # skipped, not bad: counted apart
# Message `format` / `encoding` words -> libavcodec decoder. FFMPEGPacket's encoding starts with the codec
# (h264, hevc, or an encoder's name: libx264, h264_nvenc, ...), CompressedVideo's format is h264, h265, vp9, av1.
_DECODERS: Final = (("264", "h264"), ("265", "hevc"), ("hevc", "hevc"), ("vp9", "vp9"), ("av1", "av1"))
_START_CODE: Final = b"\x00\x00\x01"


def decoder_for(fmt: str) -> str:
    """The libavcodec decoder for a message's format or encoding word; ImageCodecError when none fits."""
    word = fmt.split(";", 1)[0].strip().lower()  # FFMPEGPacket: "codec;pixel formats..."
    for key, name in _DECODERS:
        if key in word:
            return name
    raise ImageCodecError(f"video format {fmt!r} is not h264, h265, vp9 or av1", UNKNOWN_CODEC)


def _nal_types(data: bytes, hevc: bool) -> Iterator[int]:
    """The NAL unit types of an Annex B access unit (start code 00 00 01 or 00 00 00 01 before each)."""
    pos = data.find(_START_CODE)
    while pos >= 0 and pos + 3 < len(data):
        head = data[pos + 3]
        yield (head >> 1) & 0x3F if hevc else head & 0x1F
        pos = data.find(_START_CODE, pos + 3)


def is_keyframe(decoder: str, data: bytes, flag: bool | None = None) -> bool:
    """Whether an access unit starts a picture decodable without any earlier one."""
    # The first slice (VCL NAL unit) decides: every slice of an IDR/IRAP picture is one, so the scan stops
    # there rather than running through the whole unit (the node's video callback reads this per unit).
    if decoder == "h264":
        return next((t == 5 for t in _nal_types(data, hevc=False) if 1 <= t <= 5), False)
    if decoder == "hevc":
        return next((16 <= t <= 21 for t in _nal_types(data, hevc=True) if t <= 31), False)
    if flag is not None:
        return flag
    if decoder == "vp9" and data:
        # uncompressed header: frame_marker(2) profile_low(1) profile_high(1) [reserved(1) if profile 3]
        # show_existing_frame(1) frame_type(1): 0 is a key frame
        bits = data[0]
        profile = ((bits >> 5) & 1) | (((bits >> 4) & 1) << 1)
        shift = 3 if profile < 3 else 2
        return not (bits >> shift) & 1 and not (bits >> (shift - 1)) & 1
    return True  # AV1 without a flag: let the decoder find out


@dataclass(frozen=True)
class DecodedPicture:
    """A picture decoded from a video topic, RGB, with the header of the message that carried it."""

    frame: np.ndarray  # uint8 H x W x 3, RGB
    header: FrameHeader


@dataclass
class DecodeCounts:
    """What one topic's decoder did: pictures out, units skipped before the first keyframe, bad units."""

    pictures: int = 0
    skipped_before_keyframe: int = 0
    bad: Counter[str] = field(default_factory=Counter)


class VideoStreamDecoder(Generic[T]):
    """A stateful decoder for one topic: `push` access units in decode order, `flush` at the end.

    Each returns the pictures now complete, in presentation order, as (the token pushed with the unit that
    carried the picture, RGB uint8 array H x W x 3).
    """

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.counts = DecodeCounts()
        self._codec: Any = None
        self._decoder = ""
        self._started = False
        self._next = 0
        self._tokens: dict[int, T] = {}
        self.last_error = ""  # the decoder's words on the latest refused access unit
        self._rejected: list[tuple[T, str]] = []

    def take_rejected(self) -> list[tuple[T, str]]:
        """(token, reason) of the units skipped or refused since the last call."""
        rejected, self._rejected = self._rejected, []
        return rejected

    def _open(self, decoder: str) -> None:
        import av

        self._codec = av.CodecContext.create(decoder, "r")
        self._decoder = decoder

    def push(self, fmt: str, data: bytes, token: T, keyframe: bool | None = None) -> list[tuple[T, np.ndarray]]:
        """Decode one access unit; ImageCodecError only for a format word no decoder fits."""
        decoder = decoder_for(fmt)
        data = bytes(data)
        if not data:
            self._reject(token, EMPTY)
            return []
        if not self._started:
            if not is_keyframe(decoder, data, keyframe):
                self.counts.skipped_before_keyframe += 1
                self._rejected.append((token, BEFORE_KEYFRAME))
                return []
            self._started = True
        if self._codec is None or decoder != self._decoder:
            out = self.flush() if self._codec is not None else []
            self._open(decoder)
            return out + self._decode(data, token)
        return self._decode(data, token)

    def _reject(self, token: T, reason: str) -> None:
        self.counts.bad[reason] += 1
        self._rejected.append((token, reason))

    def _decode(self, data: bytes, token: T) -> list[tuple[T, np.ndarray]]:
        import av

        packet = av.Packet(data)
        packet.pts = self._next
        self._tokens[self._next] = token
        self._next += 1
        try:
            frames = self._codec.decode(packet)
        except (av.error.FFmpegError, ValueError) as exc:
            del self._tokens[packet.pts]
            self.last_error = str(exc)
            self._reject(token, UNDECODABLE)
            return []
        return self._pictures(frames)

    def _pictures(self, frames: Any) -> list[tuple[T, np.ndarray]]:
        out = []
        for frame in frames:
            token = self._tokens.pop(frame.pts, None) if frame.pts is not None else None
            if token is None:
                continue
            if frame.is_corrupt:
                self.last_error = "the decoder could only conceal the picture"
                self._reject(token, CORRUPT)
                continue
            out.append((token, frame.to_ndarray(format="rgb24")))
            self.counts.pictures += 1
        return out

    def resync(self) -> list[tuple[T, np.ndarray]]:
        """Flush, then wait for the next keyframe again (units were lost: the reference chain is broken)."""
        out = self.flush()
        self._started = False
        return out

    def flush(self) -> list[tuple[T, np.ndarray]]:
        """The pictures the decoder still holds (reordering delay); the decoder is reset for a next unit."""
        if self._codec is None:
            return []
        import av

        try:
            out = self._pictures(self._codec.decode(None))
        except (av.error.FFmpegError, ValueError):
            out = []
        for token in self._tokens.values():
            self._reject(token, NO_PICTURE)
        self._tokens.clear()
        self._codec = None
        return out
