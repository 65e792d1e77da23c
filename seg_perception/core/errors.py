"""The package's exception hierarchy: one base class so callers can catch everything we raise."""


class SegPerceptionError(Exception):
    """Base class of every error this package raises on purpose."""


class ModelSpecError(SegPerceptionError):
    """A model spec file is malformed or disagrees with its ONNX model."""


class ImageCodecError(SegPerceptionError):
    """An image message is inconsistent or uses an encoding we cannot decode.

    `reason` is a short stable slug of the kind of problem (`data_short`, `unknown_encoding`, ...) that
    the node counts per kind in /diagnostics; the message names the offending values.
    """

    def __init__(self, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.reason = reason


class BackendError(SegPerceptionError):
    """An inference backend could not be created or failed to run."""
