"""Subscriptions taken by a wait-set loop in a thread of their own: what an rclpy executor does for them, no more.

rclpy's Python executor rebuilds its wait set from every entity of every node it spins each time it wakes
and runs each callback through its task machinery; on a busy 2-core machine that bookkeeping is what gets
delayed. This loop waits on its subscriptions only (their QoS event handlers and one wake-up guard
condition beside them), takes each ready sample with its MessageInfo, and calls the callback in its own
thread. In the bench, A/B against an executor, the node's `take` of a 1280x720 rgb8 frame fell by 0.2-0.3
ms and the recorder's by 0.3-0.4 ms (docs/performance.md; tools/measure_intake_take.py measures it against
the executors). rclpy's EventsExecutor would do this in C++, but in Jazzy's rclpy 7.1.5 and
Kilted's 9.1.2 it fails on every callback that takes MessageInfo (SystemError: null argument to internal
routine), and the camera's loss counter needs the sequence numbers in it.

Only subscriptions: a node whose timers, services or clients must run still needs an executor.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from contextlib import ExitStack, suppress
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.exceptions import InvalidHandle
from rclpy.guard_condition import GuardCondition
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

from seg_perception.ros.distro import RCLError

JOIN_TIMEOUT_S = 2.0
RUNNING = "running"
WAIT_TIMEOUT_NS = 100_000_000  # how long the thread waits before it looks at its stop flag again


def takes_message_info(callback: Callable[..., None]) -> bool:
    """rclpy's own rule (Subscription.callback): a callback that binds one argument gets the message only;
    one that binds two, and not one, gets (msg, MessageInfo)."""
    signature = inspect.signature(callback)
    try:
        signature.bind(object())
    except TypeError:
        signature.bind(object(), object())  # neither: rclpy's create_subscription has refused it already
        return True
    return False


class _Taken:
    """One subscription as the loop sees it: its rclpy object and whether its callback wants MessageInfo."""

    __slots__ = ("subscription", "with_info")

    def __init__(self, subscription: Any) -> None:
        self.subscription = subscription
        self.with_info = takes_message_info(subscription.callback)


class SubscriptionLoop:
    """A thread that waits on the subscriptions added to it and calls their callbacks."""

    def __init__(self, context: Context, label: str, thread_name: str, on_error: Callable[[str], object]) -> None:
        """`on_error` gets one line, `<label> stopped: <why>`, when a callback raised (the thread then stops
        taking samples)."""
        self._label = label
        self._context = context
        self._on_error = on_error
        self._lock = threading.Lock()
        self._turn = threading.Lock()  # held while a turn takes samples and runs callbacks
        self._taken: tuple[_Taken, ...] = ()  # replaced whole under the lock; the thread reads a snapshot
        self._wake = GuardCondition(None, None, context=context)  # no node's: it stays off every node's lists
        self._stop = threading.Event()
        self._wait_set: Any = None  # the thread's, kept between turns (_wait_set_for)
        self._wait_set_sizes = (0, 0)
        self.state = RUNNING  # `running`, or `stopped: <why>` once the thread died
        self._thread = threading.Thread(target=self._spin, name=thread_name, daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def thread_name(self) -> str:
        return self._thread.name

    def add(self, subscription: Any) -> Any:
        """Wait on `subscription` from the thread's next turn (woken at once); returns it."""
        with self._lock:
            self._taken = (*self._taken, _Taken(subscription))
        self._wake_up()
        return subscription

    def remove(self, subscription: Any) -> None:
        """Wait on it no more: once this returns, its callback does not run again (so, from another thread,
        it waits for a callback of the loop's that is running: never call it holding a lock a callback
        takes). Its handle is held in use while a turn waits on it, as rclpy's executor does, so destroying
        it after this (node.destroy_subscription) takes effect once that turn has let it go."""
        with self._lock:
            self._taken = tuple(t for t in self._taken if t.subscription is not subscription)
        self._wake_up()
        if threading.current_thread() is not self._thread:
            with self._turn:  # a callback of it that had begun has ended; none begins after this
                pass

    def close(self) -> bool:
        """Stop the thread (idempotent). False when a callback outlived the join: the caller must then leave
        the subscriptions' handles alone (destroying them would race that callback)."""
        if self._closed:
            return not self._thread.is_alive()
        self._closed = True
        self._stop.set()
        self._wake_up()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=JOIN_TIMEOUT_S)
        if self._thread.is_alive():
            return False
        with self._lock:
            self._taken = ()
        self._wait_set = None
        self._wake.destroy()
        return True

    # ---------------------------------------------------------------- the thread

    def _spin(self) -> None:
        try:
            while not self._stop.is_set() and self._context.ok():
                try:
                    self._wait_and_take()
                except InvalidHandle:
                    if self._stop.is_set() or not self._context.ok():
                        return  # closed, or the context went away under the wait: a stop, not an error
                    # else an entity was destroyed under this turn: the next turn takes a new snapshot
        except KeyboardInterrupt:
            pass
        except RCLError as exc:  # a signal shut the context down while the thread waited: a clean stop
            if rclpy.ok(context=self._context):
                self._stopped(exc)
        except Exception as exc:  # noqa: BLE001 - reported on the owner's logger, not lost in a thread
            self._stopped(exc)

    def _wait_and_take(self) -> None:
        """One turn: wait (at most WAIT_TIMEOUT_NS) on every subscription, its QoS events and the wake-up
        guard condition; then take each ready subscription's sample and call its callback, and run the
        ready events' callbacks. Every handle is held in use until the turn ends."""
        with ExitStack() as in_use:
            subscriptions: list[_Taken] = []
            events: list[tuple[_Taken, Any]] = []
            for t in self._taken:
                # A subscription and its event handlers together, or neither: destroy_subscription (after a
                # remove() from another thread) destroys the handlers first, then the subscription.
                with ExitStack() as this_one:
                    try:
                        this_one.enter_context(t.subscription.handle)
                        handlers = list(t.subscription.event_handlers)
                        for handler in handlers:
                            this_one.enter_context(handler)
                    except InvalidHandle:  # destroyed since the snapshot
                        continue
                    in_use.push(this_one.pop_all())
                subscriptions.append(t)
                events += [(t, handler) for handler in handlers]
            in_use.enter_context(self._wake.handle)
            context_handle = self._context.handle
            if context_handle is None:  # destroyed
                raise InvalidHandle("context destroyed")
            in_use.enter_context(context_handle)
            wait_set = self._wait_set_for(len(subscriptions), len(events), context_handle)
            wait_set.clear_entities()
            for t in subscriptions:
                wait_set.add_subscription(t.subscription.handle)
            wait_set.add_guard_condition(self._wake.handle)
            for _, handler in events:
                handler.add_to_wait_set(wait_set)
            wait_set.wait(WAIT_TIMEOUT_NS)
            if self._stop.is_set():
                return
            with self._turn:
                self._take_ready(wait_set, subscriptions, events)

    def _wait_set_for(self, subscriptions: int, events: int, context_handle: Any) -> Any:
        """The wait set of this many entities, made once and kept while the counts stay (not per frame)."""
        if self._wait_set is None or self._wait_set_sizes != (subscriptions, events):
            self._wait_set = _rclpy.WaitSet(subscriptions, 1, 0, 0, 0, events, context_handle)
            self._wait_set_sizes = (subscriptions, events)
        return self._wait_set

    def _take_ready(self, wait_set: Any, subscriptions: list[_Taken], events: list[tuple[_Taken, Any]]) -> None:
        """A subscription removed since the snapshot (during the wait, or by an earlier callback of this turn)
        is not taken any more, nor are its events."""
        for index, t in enumerate(subscriptions):
            if t in self._taken and wait_set.is_ready("subscription", index):
                sub = t.subscription
                sample = sub.handle.take_message(sub.msg_type, sub.raw)
                if sample is None:
                    continue
                if t.with_info:
                    sub.callback(sample[0], sample[1])
                else:
                    sub.callback(sample[0])
        for t, handler in events:
            if t in self._taken and handler.is_ready(wait_set):
                _run(handler.execute(handler.take_data()))

    def _stopped(self, exc: BaseException) -> None:
        self.state = f"stopped: {type(exc).__name__}: {exc}"
        self._on_error(f"{self._label} {self.state}")

    def _wake_up(self) -> None:
        with suppress(InvalidHandle, RCLError):  # closed, or the context is already shut down: nothing waits
            self._wake.trigger()


def _run(coroutine: Any) -> None:
    """Run an rclpy event handler's `execute` coroutine to its end (it awaits a plain callback only)."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()  # it awaited something asynchronous: not a QoS event callback
