"""The planted bugs of tools/plant_bugs.py: each a small textual patch anchored on code lines, with the tests
that must catch it (the table is data; plant_bugs.py plants, runs and reports). Rounds: CORE_BUGS (issue 18),
NODE_BUGS (node, DDS and bag replay), ROUND_TWO_BUGS and ROUND_THREE_BUGS (later issues; each `title` says
the behaviour it breaks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    """Replace `old` (exactly one occurrence; a regular expression when `regex`) by `new` in `path`."""

    path: str
    old: str
    new: str
    regex: bool = False


@dataclass(frozen=True)
class Bug:
    key: str
    title: str
    # One entry per change; each entry lists alternatives (the first whose anchor is found applies), so a
    # patch keeps working when a refactor moved the code it needs to one of two known places.
    changes: tuple[tuple[Edit, ...], ...]
    tests: tuple[str, ...]
    # A control is an equivalent mutant: nothing observable changes, so no test should fail. It is reported as
    # an expected miss, not as a hole; a control that is caught points at a flaky test.
    control: bool = False


QUEUE_STORE = Edit(
    "seg_perception/ros/camera_channel.py",
    "            replaced = self.pending is not None\n            self.pending = pending\n",
    "            replaced = False  # PLANTED: queue behind the waiting frame instead of replacing it\n"
    "            if self.pending is None:\n"
    "                self.pending = pending\n"
    "            else:\n"
    '                self.__dict__.setdefault("planted_backlog", []).append(pending)\n',
)
QUEUE_TAKE = (
    Edit(
        "seg_perception/ros/camera_channel.py",
        "        pending, self.pending = self.pending, None\n",
        "        pending = self.pending\n"
        '        backlog = self.__dict__.get("planted_backlog", [])\n'
        "        self.pending = backlog.pop(0) if backlog else None  # PLANTED: next queued frame\n",
    ),
)

CORE_BUGS = (
    Bug(
        "a",
        "CameraChannel queues frames instead of replacing the waiting one",
        ((QUEUE_STORE,), QUEUE_TAKE),
        (
            "test/test_camera_channel_keeps_newest_frame.py",
            "test/test_node_over_dds.py",
        ),
    ),
    Bug(
        "b",
        "ground-grid roll and yaw signs flipped",
        (
            (
                Edit(
                    "seg_perception/core/ground_grid.py",
                    "rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])",
                    "rx = np.array([[1, 0, 0], [0, cr, sr], [0, -sr, cr]])  # PLANTED",
                ),
            ),
            (
                Edit(
                    "seg_perception/core/ground_grid.py",
                    "rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])",
                    "rz = np.array([[cy, sy, 0], [-sy, cy, 0], [0, 0, 1]])  # PLANTED",
                ),
            ),
        ),
        (
            "test/test_ground_grid.py",
            "test/test_ground_grid_on_generated_scenes.py",
            "test/test_lifecycle_and_multicamera.py::test_drivable_grid_over_dds",
        ),
    ),
    Bug(
        "c",
        "camera_info frame_id lost in the node's output camera_info",
        (
            (
                Edit(
                    "seg_perception/ros/camera_channel.py",
                    "scaled_camera_info(info, header, w, h)",
                    "scaled_camera_info(info, Header(stamp=header.stamp), w, h)",  # frame_id dropped
                ),
                Edit(
                    "seg_perception/ros/messages.py",
                    "    out.header = header\n",
                    "    out.header.stamp = header.stamp  # PLANTED: frame_id dropped\n",
                ),
            ),
        ),
        ("test/test_node_over_dds.py", "test/test_ros_messages.py"),
    ),
    Bug(
        "d",
        "image decoder rejects everything (raw and compressed)",
        (
            (
                Edit(
                    "seg_perception/core/image_codec.py",
                    '    layout = _layout_for(encoding)\n    height = as_int("height", height)\n',
                    '    raise ImageCodecError("PLANTED: every Image is refused")\n'
                    '    layout = _layout_for(encoding)\n    height = as_int("height", height)\n',
                ),
            ),
            (
                Edit(
                    "seg_perception/core/compressed_codec.py",
                    "    codec = _compressed_codec(format)\n",
                    "    codec = _compressed_codec(format)\n"
                    '    raise ImageCodecError("PLANTED: every CompressedImage is refused")\n',
                ),
            ),
        ),
        ("test/test_image_codec_round_trips.py", "test/test_ros_messages.py", "test/test_bag_process.py"),
    ),
    Bug(
        "e",
        "TensorRT backend binds the input buffer under an output's tensor name",
        (
            (
                Edit(
                    "seg_perception/backends/tensorrt_backend.py",
                    "context.set_tensor_address(name, int(tensor.device))",
                    "context.set_tensor_address(  # PLANTED: wrong tensor name for the input\n"
                    "                self.output_names[0] if name == self._input_name else name, int(tensor.device)\n"
                    "            )",
                ),
            ),
        ),
        ("test/test_tensorrt_backend.py", "test/test_tensorrt_backend_keeps_the_api_contract.py"),
    ),
    Bug(
        "f",
        "TensorRT backend sizes every buffer as float32 whatever the engine's dtype",
        (
            (
                Edit(
                    "seg_perception/backends/tensorrt_backend.py",
                    r"np\.dtype\(trt\.nptype\((?:[^()]|\([^()]*\))*\)\)",
                    "np.dtype(np.float32)  # PLANTED: dtype not read from the engine",
                    regex=True,
                ),
            ),
        ),
        ("test/test_tensorrt_backend.py", "test/test_tensorrt_backend_keeps_the_api_contract.py"),
    ),
)  # core, codec and backend bugs

REPLAY_PUBLISH = (
    "        pub = self.publishers[(conn.topic, conn.msgtype)]\n"
    "        pub.publish(data if isinstance(data, bytes) else bytes(data))\n"
)
DIAGNOSTICS = "test/test_node_diagnostics_over_dds.py::"
DIAGNOSTICS_AUTO = DIAGNOSTICS + "test_auto_backend_choice_and_incompatible_qos_are_reported"
DIAGNOSTICS_OUTPUTS = DIAGNOSTICS + "test_outputs_and_grid_nobody_subscribes_to_are_not_computed"
REPLAY_TESTS = "test/test_bag_replay_into_node.py::"
HOSTILE_TESTS = "test/test_hostile_input_over_dds.py::"
NODE = "seg_perception/ros/segmentation_node.py"
CHANNEL = "seg_perception/ros/camera_channel.py"
REPLAY = "seg_perception/bag/replay.py"


def single(path: str, old: str, new: str) -> tuple[tuple[Edit, ...], ...]:
    """The changes of a bug that is one edit at one place."""
    return ((Edit(path, old, new),),)


NODE_BUGS = (
    Bug(
        "g",
        "the backend auto-choice reason is not logged",
        single(
            NODE,
            'f"backend {self.segmenter.backend_name}: {self.segmenter.backend_reason}"',
            'f"backend {self.segmenter.backend_name}"  # PLANTED: reason dropped',
        ),
        (DIAGNOSTICS_AUTO,),
    ),
    Bug(
        "h",
        "the backend auto-choice reason is missing from the diagnostics",
        single(NODE, '"backend_reason": self.segmenter.backend_reason,', '"backend_reason": "",  # PLANTED'),
        (DIAGNOSTICS_AUTO,),
    ),
    Bug(
        "i",
        "bag replay decodes and re-encodes images (rgb8 turned into bgr8) instead of publishing the recorded bytes",
        single(
            REPLAY,
            REPLAY_PUBLISH,
            "        from rclpy.serialization import deserialize_message  # PLANTED: re-encode images\n"
            "        pub = self.publishers[(conn.topic, conn.msgtype)]\n"
            "        msg = deserialize_message(bytes(data), pub.msg_type)\n"
            '        if conn.msgtype == "sensor_msgs/msg/Image":\n'
            "            import array\n"
            "            import numpy as np\n"
            "            px = np.frombuffer(bytes(msg.data), np.uint8)\n"
            "            px = px.reshape(msg.height, msg.width, 3)[..., ::-1]\n"
            '            buf = array.array("B")\n'
            "            buf.frombytes(np.ascontiguousarray(px).tobytes())\n"
            "            msg.data = buf\n"
            '            msg.encoding = "bgr8"\n'
            "        pub.publish(msg)\n",
        ),
        (
            REPLAY_TESTS + "test_replay_publishes_the_recorded_bytes_on_the_bag_schedule",
            REPLAY_TESTS + "test_start_offset_skips_the_start_of_the_bag",
            REPLAY_TESTS + "test_loop_plays_the_bag_again_until_interrupted",
        ),
    ),
    Bug(
        "j",
        "bag replay ignores --start-offset",
        single(
            REPLAY,
            "        start_ns = reader.start_time + int(options.start_offset_s * 1e9)\n",
            "        start_ns = reader.start_time  # PLANTED: offset ignored\n",
        ),
        (REPLAY_TESTS + "test_start_offset_skips_the_start_of_the_bag",),
    ),
    Bug(
        "k",
        "bag replay ignores --loop",
        single(
            REPLAY,
            "                    if not options.loop:\n",
            "                    if True:  # PLANTED: loop ignored\n",
        ),
        (REPLAY_TESTS + "test_loop_plays_the_bag_again_until_interrupted",),
    ),
    Bug(
        "l",
        "bag replay skips a topic whose message type is not installed without the warning",
        single(
            REPLAY,
            '                    LOG.warning("skipping %s: message type %s is not installed",'
            " conn.topic, conn.msgtype)\n",
            "                    pass  # PLANTED: warning removed\n",
        ),
        (REPLAY_TESTS + "test_a_topic_whose_type_is_not_installed_is_skipped_with_a_warning",),
    ),
    Bug(
        "m",
        "every output is computed whether or not anyone subscribes to it",
        single(
            CHANNEL,
            "self._listeners = {t: p is not None and p.get_subscription_count() > 0 for t, p in pubs.items()}",
            "self._listeners = {t: p is not None for t, p in pubs.items()}  # PLANTED: subscribers not consulted",
        ),
        (DIAGNOSTICS_OUTPUTS,),
    ),
    Bug(
        "n",
        "the drivable grid is computed when nobody subscribes to it",
        single(
            NODE,
            "self._grid_listened = self._grid_pub.get_subscription_count() > 0",
            "self._grid_listened = True  # PLANTED",
        ),
        (DIAGNOSTICS_OUTPUTS,),
    ),
    Bug(
        "o",
        "the incompatible-QoS callback is not registered (a mismatched publisher goes unreported)",
        single(
            NODE,
            "                incompatible_qos=partial("
            'self._on_incompatible, self._image_topic(ch), "qos_reliability")\n',
            "                # PLANTED: incompatible-QoS callback removed\n",
        ),
        (DIAGNOSTICS_AUTO,),
    ),
    Bug(
        "p",
        "a malformed frame is counted without its reason",
        single(NODE, "ch.stats.on_bad_frame(exc.reason)", "ch.stats.on_bad_frame()  # PLANTED: reason lost"),
        (
            HOSTILE_TESTS + "test_every_malformed_image_kind_reaches_the_decoder_and_is_counted",
            HOSTILE_TESTS + "test_every_malformed_compressed_kind_reaches_the_decoder_and_is_counted",
        ),
    ),
    Bug(
        "q",
        "one malformed image kind (odd_size) is not counted",
        single(
            NODE,
            "                ch.stats.on_bad_frame(exc.reason)\n",
            '                if exc.reason != "odd_size":  # PLANTED: one kind not counted\n'
            "                    ch.stats.on_bad_frame(exc.reason)\n",
        ),
        (HOSTILE_TESTS + "test_every_malformed_image_kind_reaches_the_decoder_and_is_counted",),
    ),
    Bug(
        "r",
        "a camera that went silent is still waited for when batching",
        single(
            CHANNEL,
            "        return now - self.last_input < LIVE_FOR_S\n",
            "        return True  # PLANTED: never silent\n",
        ),
        ("test/test_lifecycle_and_multicamera.py::test_cameras_are_batched_and_keep_their_own_headers",),
    ),
    # An equivalent mutant kept as a control: rclpy re-serializes a deserialized message to the very same CDR
    # bytes, so nothing observable changes; not caught is the expected result (a catch means a flaky test).
    # The import sits at module level so that the first publish is not delayed by it. The first deserialize
    # still costs a little: test_replay_publishes_the_recorded_bytes_on_the_bag_schedule measures from the
    # first frame's own send time with a 5 ms tolerance, so a late first frame makes every later one look
    # early, and it failed on this control in about 1 run in 7 (a timing weakness of that test).
    Bug(
        "s",
        "CONTROL (equivalent mutant): bag replay deserializes and re-serializes each message",
        (
            (
                Edit(
                    REPLAY,
                    "from rclpy.signals import SignalHandlerOptions\n",
                    "from rclpy.serialization import deserialize_message  # PLANTED: equivalent mutant\n"
                    "from rclpy.signals import SignalHandlerOptions\n",
                ),
            ),
            (
                Edit(
                    REPLAY,
                    REPLAY_PUBLISH,
                    "        pub = self.publishers[(conn.topic, conn.msgtype)]  # PLANTED: equivalent mutant\n"
                    "        pub.publish(deserialize_message(bytes(data), pub.msg_type))\n",
                ),
            ),
        ),
        (REPLAY_TESTS + "test_replay_publishes_the_recorded_bytes_on_the_bag_schedule",),
        control=True,
    ),
)

ROUND_TWO_BUGS = (
    Bug(
        "t",
        "logits_bilinear with a letterbox ignores align_corners in the resize to the model input",
        single(
            "seg_perception/core/graph_postprocess.py",
            'x = b.resize(x, geo.model_height, geo.model_width, "linear", align_corners=corners)',
            'x = b.resize(x, geo.model_height, geo.model_width, "linear")  # PLANTED: align_corners lost',
        ),
        ("test/test_logit_upsampling.py::test_letterbox_follows_mmsegmentation_resize_crop_resize",),
    ),
    Bug(
        "u",
        "quantize ignores --min-agreement (always the default 98 %)",
        single(
            "seg_perception/int8_flow.py",
            "    thresholds = GateThresholds(args.min_agreement / 100, args.min_class_iou / 100)\n",
            "    thresholds = GateThresholds(0.98, args.min_class_iou / 100)  # PLANTED: --min-agreement ignored\n",
        ),
        ("test/test_int8_gate_and_mixed_precision.py::test_non_default_gate_thresholds_change_the_verdict",),
    ),
    Bug(
        "v",
        "diagnostics latency percentiles read part of the window once it wrapped (more than 256 frames)",
        single(
            "seg_perception/core/frame_stats.py",
            "            recent = self._latencies[: min(self._count, len(self._latencies))]\n",
            "            recent = self._latencies[: self._count % (len(self._latencies) + 1)]  # PLANTED\n",
        ),
        ("test/test_frame_stats_window.py",),
    ),
    Bug(
        "w",
        "engine cache key without the precision (an fp16 engine reused for an fp32 request)",
        single(
            "seg_perception/backends/engine_artefacts.py",
            '        "precision": options.precision,\n',
            "        # PLANTED: no precision in the key\n",
        ),
        ("test/test_engine_cache_key.py",),
    ),
    Bug(
        "x",
        "fleet merges a bag's chunks in completion order instead of time order",
        single(
            "seg_perception/fleet/fleet_runner.py",
            "self._commit(unit, bag, [chunks[i].staged for i in range(unit.chunks)])",
            "self._commit(unit, bag, [r.staged for r in chunks.values()])  # PLANTED",
        ),
        ("test/test_fleet_completion_order_and_retries.py",),
    ),
    Bug(
        "y",
        "fleet retries a unit whose worker died one time fewer than documented",
        single(
            "seg_perception/fleet/fleet_runner.py",
            "if self.attempts[key] > self.request.retries:",
            "if self.attempts[key] >= self.request.retries:  # PLANTED",
        ),
        ("test/test_fleet_completion_order_and_retries.py",),
    ),
)

# The guards the review of 27203b1 asked for (branch mend).
ROUND_THREE_BUGS = (
    Bug(
        "z",
        "process with several bags no longer refuses an output root holding foreign entries",
        single(
            "seg_perception/fleet/bag_inputs.py",
            "    if foreign:\n",
            "    if False and foreign:  # PLANTED: foreign entries accepted\n",
        ),
        (
            "test/test_fleet_process_many_bags.py::"
            "test_an_output_root_holding_other_things_is_refused_before_anything_is_written",
        ),
    ),
    Bug(
        "za",
        "bench substitutes the first accepted camera size it scans, not the nearest",
        single(
            "seg_perception/bench/camera_sizes.py",
            "    return min(fits, key=lambda c: (abs(c[0] * c[1] - width * height), abs(c[0] / c[1] - aspect), c))\n",
            "    return fits[0]  # PLANTED: first scanned, not nearest\n",
        ),
        ("test/test_bench_smoke.py::test_a_substitute_camera_size_is_the_accepted_one_nearest_in_pixels",),
    ),
    Bug(
        "zb",
        "antialias_uint8_fixed_point shifts by one bit less than PyTorch's uint8 kernel (int16 weights at 2**14)",
        single(
            "seg_perception/core/graph_resize.py",
            "    while precision < 22 and int(0.5 + largest * (1 << (precision + 1))) < (1 << 15):\n",
            "    while precision < 22 and int(0.5 + largest * (1 << (precision + 1))) < (1 << 14):  # PLANTED\n",
        ),
        ("test/test_preprocessing_matches_libraries.py::test_torchvision_antialias_on_uint8_is_bit_exact",),
    ),
    Bug(
        "zc",
        "antialias_uint8's FMA emulation drops the rounding error of the running sum (TwoSum's acc part)",
        single(
            "seg_perception/core/graph_resize.py",
            '        error = b.op("Add", [b.op("Sub", [acc, acc_part]), b.op("Sub", [lead, lead_part])])\n',
            '        error = b.op("Sub", [lead, lead_part])  # PLANTED: acc - acc_part lost\n',
        ),
        ("test/test_preprocessing_matches_libraries.py::test_torchvision_antialias_on_uint8_is_bit_exact",),
    ),
    Bug(
        "zd",
        "frame losses stay 'not counted' for the node's life once a second unnamed publisher appeared (Jazzy)",
        single(
            "seg_perception/core/frame_stats.py",
            "        self.loss_counted = lost is not None\n",
            "        self.loss_counted = self.loss_counted and lost is not None  # PLANTED: never recovers\n",
        ),
        (
            "test/test_frame_stats_counters.py",
            "test/test_camera_channel_keeps_newest_frame.py",
            "test/test_video_input_losses.py",
            "test/test_node_diagnostics_over_dds.py::test_frames_of_two_publishers_are_counted_or_said_not_counted",
        ),
    ),
    Bug(
        "ze",
        "a video backlog is dropped whole, never back to its newest fresh keyframe",
        single(
            "seg_perception/ros/video_input.py",
            "                cut = len(queue) if unit.keyframe else backlog_cut(queue, now)\n",
            "                cut = len(queue)  # PLANTED: the whole queue\n",
        ),
        ("test/test_video_backlog_keeps_newest_keyframe.py",),
    ),
    Bug(
        "zf",
        "label upsampling reads source o * h // H exactly, not what ONNX Runtime's nearest Resize read",
        single(
            "seg_perception/core/graph_postprocess.py",
            "    index = np.floor(np.arange(n_out, dtype=np.float32) / scale).astype(np.int64)\n",
            "    index = np.arange(n_out) * n_in // n_out  # PLANTED: exact division\n",
        ),
        (
            "test/test_label_upsampling_gathers_match_resize.py::"
            "test_indices_follow_onnx_runtime_float_rule_not_exact_division",
        ),
    ),
    Bug(
        "zg",
        "native models' label cut keeps the columns of the stride padding",
        single(
            "seg_perception/core/graph_postprocess.py",
            '        cols = b.const(nearest_indices(w, width)[:keep_w], "cols")\n',
            '        cols = b.const(nearest_indices(w, width), "cols")  # PLANTED: padding columns kept\n',
        ),
        ("test/test_label_upsampling_gathers_match_resize.py::test_the_cut_equals_resize_then_slice",),
    ),
    Bug(
        "zh",
        "the intake's wait-set loop calls every callback with the sample only, never with its MessageInfo",
        single(
            "seg_perception/ros/subscription_loop.py",
            "        self.with_info = takes_message_info(subscription.callback)\n",
            "        self.with_info = False  # PLANTED: MessageInfo never passed\n",
        ),
        (
            "test/test_camera_intake_node.py::"
            "test_a_two_argument_callback_gets_the_message_info_and_a_one_argument_one_the_message_only",
        ),
    ),
    Bug(
        "zi",
        "the fused graph casts the uint8 camera frame straight to int32 (TensorRT converts uint8 to float only)",
        single(
            "seg_perception/core/graph_resize.py",
            '    x = b.op("Cast", [b.op("Cast", [image], to=TensorProto.FLOAT)], to=TensorProto.INT32)\n',
            '    x = b.op("Cast", [image], to=TensorProto.INT32)  # PLANTED: uint8 -> int32\n',
        ),
        ("test/test_fused_graph_uint8_casts_are_tensorrt_legal.py",),
    ),
)

BUGS = CORE_BUGS + NODE_BUGS + ROUND_TWO_BUGS + ROUND_THREE_BUGS
