"""The OpenFX plugin end to end, through the project's own C++ test host.

In: the bundle built by CMake (fixture `ofx_build`), clips made here, a real engine process
with the tiny preset, and a scripted fake engine (exact pixels, malformed replies, paging).
Out: assertions that the host walk load -> describe -> describeInContext -> createInstance
works, that Analyze sends the clip's range as one job with the right settings, that every
rendered frame (out of order, several threads, 8-bit and float) equals the engine's result,
that an unreachable engine or a malformed reply gives passthrough plus a message or an error
status (never a crash), that the engine's warnings end the done status, and that destroy +
unload leave no threads, sockets or images behind; host behaviours the test host models (proxy Analyze, string reads off the main thread, a
disconnected Source, aborts, RUNPATH), the job-record serializer (records_test) and the
parameter defaults against engine.settings.Settings.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import msgpack
import numpy as np
import pytest

from engine.settings import MAX_PROMPT_CHARS
from ofxkit import BuildError, assert_clean_exit, build, make_clip, premultiply, run_host, unpremultiply
from fake_engine import MALFORMED, FakeEngine, edit

BASE = ["set:prompt=add glasses", "set:steps=2", "set:mode=1"]  # mode 1: full frame
WAIT = "wait:done|error|failed"


def record_of(run) -> dict:
    """The job record the plugin keeps in its secret `analysis` parameter (msgpack, hex)."""
    tag, _, body = run.of("status")[-1]["analysis"].partition(":")
    assert tag == "ipfd-ofx2", tag
    return msgpack.unpackb(bytes.fromhex(body))


def job_of(run) -> str:
    return record_of(run)["job"]


def short_id(job: str) -> str:
    """How the status line names a job (worker.cpp short_id)."""
    return job if len(job) <= 16 else job[:16] + "…"


def test_bundle_layout_exports_and_description(ofx_build, tmp_path):
    assert ofx_build.binary.is_file(), ofx_build.binary
    assert ofx_build.binary.relative_to(ofx_build.dir).as_posix() == \
        "ipfacediff.ofx.bundle/Contents/Linux-x86-64/ipfacediff.ofx"
    nm = shutil.which("nm")
    assert nm, "nm (binutils) is needed to check the exported symbols"
    out = subprocess.run([nm, "-D", "--defined-only", str(ofx_build.binary)], capture_output=True, text=True).stdout
    assert sorted(line.split()[-1] for line in out.splitlines() if line.strip()) == \
        ["OfxGetNumberOfPlugins", "OfxGetPlugin"]

    run = run_host(ofx_build, tmp_path, make_clip(1, 16, 16, 4, np.uint8), [])
    load, desc = run.of("load")[0], run.of("describe")[0]
    assert load == {"event": "load", "plugins": 1, "id": "io.github.ipfacediff.IPFaceDiff", "version": "1.0"}
    assert desc["contexts"] == ["OfxImageEffectContextFilter", "OfxImageEffectContextGeneral"]
    assert desc["depths"] == ["OfxBitDepthByte", "OfxBitDepthShort", "OfxBitDepthFloat"]
    assert desc["thread_safety"] == "OfxImageEffectRenderFullySafe"
    assert desc["temporal"] == 1 and desc["multires"] == 1 and desc["clips"]["Source"]["temporal"] == 1
    assert desc["clips"]["Source"]["components"] == ["OfxImageComponentRGBA", "OfxImageComponentRGB"]
    params = {p["name"]: p for p in desc["params"]}
    assert list(params) == ["prompt", "address", "seed", "guidance", "keyframeInterval", "mode", "steps", "analyze",
                            "status", "analysis"]
    assert params["prompt"]["string_mode"] == "OfxParamStringIsMultiLine"
    assert params["status"]["string_mode"] == "OfxParamStringIsLabel"
    assert params["analyze"]["type"] == "OfxParamTypePushButton"
    assert params["mode"]["options"] == ["crop (face)", "full frame", "auto (crop if a face is found)"]
    assert params["analysis"]["secret"] == 1
    assert all(p["animates"] == 0 for n, p in params.items() if n != "analyze")
    leaks = assert_clean_exit(run)
    assert leaks["suites"][:3] == ["OfxPropertySuite/1", "OfxImageEffectSuite/1", "OfxParameterSuite/1"]


def runpath(binary: Path) -> str:
    readelf = shutil.which("readelf")
    assert readelf, "readelf (binutils) is needed to check the RUNPATH"
    out = subprocess.run([readelf, "-d", str(binary)], capture_output=True, text=True, check=True).stdout
    paths = [line.split("[", 1)[1].rsplit("]", 1)[0] for line in out.splitlines()
             if "(RUNPATH)" in line or "(RPATH)" in line]
    assert len(paths) == 1, out
    return paths[0]


def test_runpath_is_exactly_origin_in_the_build_tree_and_installed_bundles(ofx_build, tmp_path):
    """An empty RUNPATH entry ("$ORIGIN:") makes the loader search the host's current folder."""
    subprocess.run(["cmake", "--install", str(ofx_build.dir), "--prefix", str(tmp_path)], check=True,
                   capture_output=True)
    installed = tmp_path / ofx_build.binary.relative_to(ofx_build.dir)
    for binary in (ofx_build.binary, installed):
        assert runpath(binary).split(":") == ["$ORIGIN"], (binary, runpath(binary))


def test_job_records_round_trip_and_broken_ones_are_refused(ofx_build):
    proc = subprocess.run([str(ofx_build.dir / "records_test")], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("ok "), proc.stdout + proc.stderr


def test_the_hosts_thread_count_does_not_see_threads_that_were_already_joined(ofx_build, tmp_path):
    """The leak check compares thread counts after dlclose; a joined thread can stay listed in
    /proc/self/task for a moment, which once failed a clean session (threads_after 2 vs 1)."""
    run = run_host(ofx_build, tmp_path, make_clip(1, 8, 8, 3, np.uint8, seed=1), ["joins:3000"])
    joins = run.of("joins")[-1]
    assert joins["count"] == 3000 and joins["listed_after_settling"] == 0, joins
    assert_clean_exit(run)


def test_install_target_and_install_ofx(ofx_build, tmp_path):
    from plugin_ofx.install import default_dest, install

    bundle = install(tmp_path / "OFX" / "Plugins", ofx_build.dir)  # CMake's install target underneath
    assert bundle == tmp_path / "OFX" / "Plugins" / "ipfacediff.ofx.bundle"
    assert (bundle / "Contents" / "Linux-x86-64" / "ipfacediff.ofx").is_file()
    run = run_host(dataclasses.replace(ofx_build, bundle=bundle), tmp_path / "host",
                   make_clip(1, 16, 16, 3, np.uint8), [])
    assert run.of("describe")[0]["label"] == "IP-FaceDiff"
    assert_clean_exit(run)
    assert default_dest("linux", {"OFX_PLUGIN_PATH": ":/opt/ofx:/other"}) == Path("/opt/ofx")
    assert default_dest("linux", {}) == Path("/usr/OFX/Plugins")
    assert default_dest("darwin", {"OFX_PLUGIN_PATH": "/Users/me/OFX;/other"}) == Path("/Users/me/OFX")
    assert default_dest("darwin", {}) == Path("/Library/OFX/Plugins")
    assert default_dest("win32", {"COMMONPROGRAMFILES": "D:/Common"}) == Path("D:/Common") / "OFX" / "Plugins"


# --- against the real engine (tiny preset) -------------------------------------------------------
def engine_frames(engine, job: str) -> list[np.ndarray]:
    c = engine.client(timeout=30.0)
    try:
        res = c.result(job)
    finally:
        c.close()
    assert res.status == "DONE", res
    return res.frames


@pytest.mark.slow
def test_real_engine_uint8_out_of_order_threads_and_reopen(ofx_build, real_engine, tmp_path):
    clip = make_clip(4, 64, 64, 4, np.uint8, seed=1)
    order = [103, 100, 102, 101, 100, 103]
    run = run_host(ofx_build, tmp_path, clip, [
        *BASE, f"set:address={real_engine.address}", "analyze", f"{WAIT}:900",
        f"render:{','.join(map(str, order))}:3:1:OUT",
        "reopen", f"{WAIT}:120", "render:101,102:2:1:OUT"],
        first=100, origin=(17, -9), negative_rowbytes=True)
    statuses = run.of("status")
    assert statuses[0]["status_text"].startswith("done: 4 frame(s) edited"), statuses
    assert "identity QC" in statuses[0]["status_text"]
    assert run.of("analyze")[0]["ms"] < 5000  # Analyze reads frames and returns; the engine works meanwhile
    job = job_of(run)
    expected = engine_frames(real_engine, job)
    renders = run.renders()
    assert len(renders) == len(order) + 2 and all(r["status"] == 0 for r in renders)
    for r in renders:
        out = run.output(r["time"], r["seq"])
        assert np.array_equal(out, expected[r["time"] - 100]), r
        assert np.array_equal(out[..., 3], clip[r["time"] - 100][..., 3])  # alpha passed through
    assert not np.array_equal(expected[0][..., :3], clip[0][..., :3])
    # After reopening, the persisted analysis found the same engine job without a new upload.
    assert statuses[1]["status_text"].startswith("done:") and job_of(run) == job
    assert_clean_exit(run)


@pytest.mark.slow
def test_a_real_engine_crop_run_without_a_face_says_so_in_the_done_status(ofx_build, real_engine, tmp_path):
    """Noise has no face: the engine returns the clip unchanged with its no-face warning, which
    the status line must carry (it used to say only "done: 2 frame(s) edited")."""
    clip = make_clip(2, 32, 32, 4, np.uint8, seed=18)
    run = run_host(ofx_build, tmp_path, clip, [
        "set:prompt=add glasses", "set:steps=2", "set:mode=0", f"set:address={real_engine.address}", "analyze",
        f"{WAIT}:300", "render:0,1:1:1:OUT"])
    job = job_of(run)
    c = real_engine.client(timeout=30.0)
    try:
        res = c.result(job, pixels=False)
    finally:
        c.close()
    assert res.status == "DONE" and res.stats["no_face"] is True and len(res.warnings) == 1, res
    assert res.warnings[0].startswith("no face was found in any frame"), res.warnings
    warning = res.warnings[0].rstrip(".")
    assert run.last_status() == ("done: 2 frame(s) edited; identity QC: no face measured; RANDOM WEIGHTS (noise, "
                                 f"not an edit); warning: {warning} [job {short_id(job)}]"), run.last_status()
    for r in run.renders():
        assert np.array_equal(run.output(r["time"], r["seq"]), clip[r["time"]]), r
    assert_clean_exit(run)


@pytest.mark.slow
def test_real_engine_float_rgb_general_context(ofx_build, real_engine, tmp_path):
    clip = make_clip(3, 48, 80, 3, np.float32, seed=2)
    run = run_host(ofx_build, tmp_path, clip, [
        *BASE, "set:seed=3", f"set:address={real_engine.address}", "analyze", f"{WAIT}:900",
        "render:2,0,1,2,0:4:1:OUT"], context="general", pad=12, origin=(-3, 5))
    assert run.last_status().startswith("done: 3 frame(s) edited"), run.last_status()
    expected = engine_frames(real_engine, job_of(run))
    for r in run.renders():
        assert r["status"] == 0
        assert np.array_equal(run.output(r["time"], r["seq"]), expected[r["time"]]), r
    assert_clean_exit(run)


# --- engine down, malformed replies ----------------------------------------------------------------
@pytest.mark.parametrize("message_v2", [True, False], ids=["persistent-message", "message-v1"])
def test_engine_down_passes_input_through_with_a_message(ofx_build, tmp_path, message_v2):
    from serverkit import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    clip = make_clip(2, 32, 32, 4, np.uint8, seed=3)
    run = run_host(ofx_build, tmp_path, clip, [*BASE, f"set:address={address}", "analyze",
                                               "wait:engine unreachable:30", "render:1,0,1:2:1:OUT"],
                   message_v2=message_v2)
    status = run.last_status()
    assert status.startswith(f"engine unreachable at {address}"), status
    assert run.of("analyze")[0]["ms"] < 2000
    for r in run.renders():
        assert r["status"] == 0 and r["ms"] < 1000  # render never waits for the network
        assert np.array_equal(run.output(r["time"], r["seq"]), clip[r["time"]])
    if message_v2:
        texts = [e["text"] for e in run.of("persistent")]
    else:
        texts = [e["text"] for e in run.of("message") if e["type"] == "OfxMessageError"]
    assert any("unreachable" in t and "showing the input" in t for t in texts), run.events
    assert_clean_exit(run)  # the retrying worker is stopped and joined by DestroyInstance


@pytest.mark.parametrize("mode", sorted(MALFORMED))
def test_malformed_reply_gives_an_error_status_not_a_crash(ofx_build, tmp_path, mode):
    clip = make_clip(2, 16, 24, 4, np.uint8, seed=4)
    with FakeEngine(mode) as fake:
        run = run_host(ofx_build, tmp_path, clip, [*BASE, f"set:address={fake.address}", "analyze",
                                                   "wait:error|failed|done:30", "render:0,1:2:1:OUT"])
    status = run.last_status()
    assert status.startswith("error: malformed reply from the engine: "), (MALFORMED[mode], status)
    for r in run.renders():
        assert r["status"] == 0
        assert np.array_equal(run.output(r["time"], r["seq"]), clip[r["time"]])
    assert any(status in e["text"] for e in run.of("persistent"))
    assert_clean_exit(run)


@pytest.mark.parametrize("prompt", ["", " \t ", "x" * (MAX_PROMPT_CHARS + 1), "é" * (MAX_PROMPT_CHARS + 1)], ids=["empty", "blank", "long", "long-utf8"])
def test_a_bad_prompt_shows_the_engines_own_sentence_and_no_job_is_accepted(ofx_build, tmp_path, prompt):
    """The plugin keeps no copy of the prompt rule: the engine's SUBMIT check (engine.prompts,
    through server/protocol.py) refuses it and its one sentence is the status."""
    from engine.prompts import prompt_problem

    clip = make_clip(1, 16, 16, 3, np.uint8)
    with FakeEngine() as fake:
        run = run_host(ofx_build, tmp_path, clip, [f"set:prompt={prompt}", f"set:address={fake.address}", "analyze",
                                                   f"{WAIT}:30", "render:0:1:1:OUT"])
        assert fake.submits == []
    expected = f"failed: the engine refused the job: {prompt_problem(prompt)} [bad_field]"
    assert run.last_status() == expected, run.last_status()
    assert any(expected in e["text"] for e in run.of("persistent")), run.of("persistent")
    assert np.array_equal(run.output(0, 0), clip[0])  # the input is shown
    assert_clean_exit(run)


# --- pixels, against the scripted engine ---------------------------------------------------------
CASES = [  # dtype, channels, premultiplied, origin, negative row bytes, context
    (np.uint8, 4, False, (0, 0), False, "filter"),
    (np.uint8, 3, False, (-5, 12), True, "general"),
    (np.uint8, 4, True, (7, -2), True, "filter"),
    (np.uint16, 4, True, (3, 3), False, "filter"),
    (np.uint16, 3, False, (0, 0), True, "filter"),
    (np.float32, 4, True, (-8, -8), True, "general"),
    (np.float32, 3, False, (11, 0), False, "filter"),
]


@pytest.mark.parametrize("dtype,channels,premult,origin,negative,context", CASES,
                         ids=[f"{np.dtype(c[0]).name}-{c[1]}ch{'-premult' if c[2] else ''}-{c[5]}" for c in CASES])
def test_pixel_formats_layouts_and_settings(ofx_build, tmp_path, dtype, channels, premult, origin, negative, context):
    clip = make_clip(3, 24, 40, channels, dtype, seed=5, alpha="edges")
    if premult:
        clip = premultiply(clip)  # a valid premultiplied clip: colour never above alpha
    with FakeEngine() as fake:
        run = run_host(ofx_build, tmp_path, clip, [
            "set:prompt=  make the hair red\n", f"set:address={fake.address}", "set:seed=7", "set:guidance=3.5",
            "set:keyframeInterval=2", "set:mode=0", "set:steps=4", "analyze", f"{WAIT}:30",
            "render:2,0,1,0:3:1:OUT"], premult=premult, origin=origin, negative_rowbytes=negative, context=context,
            pad=8 if negative else 0)
        assert len(fake.submits) == 1
        submit = fake.submits[0]
        uploaded = fake.uploads[submit["job"]]
    assert submit["prompt"] == "make the hair red"
    assert submit["settings"] == {"seed": 7, "guidance_scale": 3.5, "keyframe_interval": 2, "face_mode": "crop",
                                  "steps": 4}
    assert submit["frames"] == {"dtype": np.dtype(dtype).name, "shape": [24, 40, channels], "count": 3}
    record = record_of(run)
    assert submit["job"] == record["job"] and submit["job"].startswith("ofx-")
    assert record["address"] == fake.address and record["first"] == 0 and record["count"] == 3
    assert record["format"] == {"dtype": np.dtype(dtype).name, "channels": channels, "width": 40, "height": 24,
                                "x1": origin[0], "y1": origin[1], "premult": premult}
    assert len(record["hashes"]) == 3 * 8 and record["done"] is True
    sent = unpremultiply(clip) if premult else clip
    for i in range(3):
        assert np.array_equal(uploaded[i], sent[i]), i
    status = run.last_status()
    assert status.startswith("done: 3 frame(s) edited; identity QC mean 0.123, max 0.250 (threshold 0.400), "
                             "0 drifted frame(s); inversion cache miss"), status
    for r in run.renders():
        expected = edit(sent[r["time"]])
        if premult:
            expected = premultiply(expected)
        assert np.array_equal(run.output(r["time"], r["seq"]), expected), r
    assert_clean_exit(run)


def test_the_engines_warnings_follow_the_done_status_once_each_in_the_engines_order(ofx_build, tmp_path):
    cut = ("the prompt has 90 tokens but the text encoder reads 75; it is cut after 'glasses' and ignores "
           "'and a hat'.")
    no_face = ("no face was found in any frame, so the clip passed through unchanged; set face_mode to full "
               "(--mode full) to edit whole frames.")
    clip = make_clip(2, 16, 16, 4, np.uint8, seed=19)
    with FakeEngine(warnings=[cut, no_face, cut]) as fake:
        run = run_host(ofx_build, tmp_path, clip, [*BASE, f"set:address={fake.address}", "analyze", f"{WAIT}:30",
                                                   "render:0:1:1:OUT"])
    assert run.last_status() == ("done: 2 frame(s) edited; identity QC mean 0.123, max 0.250 (threshold 0.400), "
                                 f"0 drifted frame(s); inversion cache miss; warning: {cut[:-1]}; "
                                 f"warning: {no_face[:-1]} [job {short_id(job_of(run))}]"), run.last_status()
    assert np.array_equal(run.output(0, 0), edit(clip[0]))
    assert_clean_exit(run)


def test_result_fetched_once_in_pages_and_analyze_again_only_refreshes(ofx_build, tmp_path):
    clip = make_clip(5, 16, 16, 4, np.uint8, seed=6)
    with FakeEngine(page_frames=2) as fake:
        run = run_host(ofx_build, tmp_path, clip, [
            *BASE, f"set:address={fake.address}", "analyze", f"{WAIT}:30", "render:4,3,2,1,0:2:1:OUT", "analyze",
            "status", "render:0,4:2:1:OUT"])
        pages = [(r.get("offset", 0), r.get("count")) for r in fake.result_requests()]
        submits = len(fake.submits)
    assert submits == 1
    assert pages == [(0, 5), (0, 2), (2, 2), (4, 1)]  # too_large once, then pages of 2; never again
    assert run.last_status().startswith("done: 5 frame(s)")
    for r in run.renders():
        assert np.array_equal(run.output(r["time"], r["seq"]), edit(clip[r["time"]])), r
    assert_clean_exit(run)


def test_proxy_render_scale_is_box_filtered(ofx_build, tmp_path):
    clip = make_clip(2, 32, 48, 4, np.uint8, seed=7)
    with FakeEngine() as fake:
        run = run_host(ofx_build, tmp_path, clip, [*BASE, f"set:address={fake.address}", "analyze", f"{WAIT}:30",
                                                   "render:1,0:2:0.5:OUT"], origin=(4, 6), negative_rowbytes=True)
    for r in run.renders():
        full = edit(clip[r["time"]]).astype(np.float64)
        blocks = full.reshape(16, 2, 24, 2, 4).mean(axis=(1, 3))
        expected = np.clip(np.floor(blocks + 0.5), 0, 255).astype(np.uint8)
        assert np.array_equal(run.output(r["time"], r["seq"], (16, 24, 4)), expected), r
    assert_clean_exit(run)


def test_an_aborted_render_returns_failed_and_leaves_no_frame_to_keep(ofx_build, tmp_path):
    """The host treats an OK render as a finished frame (the test host flags an OK render with
    unwritten rows): an abort before or during writing must return kOfxStatFailed."""
    clip = make_clip(2, 160, 16, 4, np.uint8, seed=8)
    with FakeEngine() as fake:
        run = run_host(ofx_build, tmp_path, clip, [
            *BASE, f"set:address={fake.address}", "analyze", f"{WAIT}:30", "abortrender:0", "abortrender:0:2",
            "render:0:1:1:OUT", "set:prompt=something else", "abortrender:1:2"])
    at_once, edited_half, normal, passthrough_half = run.renders()
    assert at_once["status"] == 1 and at_once["abort_calls"] == 1  # asked once, gave up at once
    assert edited_half["status"] == 1 and edited_half["abort_calls"] == 3  # rows 0-63 written, then abort
    assert passthrough_half["status"] == 1 and passthrough_half["abort_calls"] == 3
    assert normal["status"] == 0
    assert np.array_equal(run.output(0, normal["seq"]), edit(clip[0]))
    assert_clean_exit(run)


def test_a_disconnected_source_is_named_and_renders_black(ofx_build, tmp_path):
    clip = make_clip(1, 16, 16, 4, np.uint8, seed=12)
    with FakeEngine() as fake:
        run = run_host(ofx_build, tmp_path, clip, [*BASE, f"set:address={fake.address}", "analyze", f"{WAIT}:30",
                                                   "disconnect", "render:0:1:1:OUT"])
    (r,) = run.renders()
    assert r["status"] == 0
    assert not run.output(0, r["seq"]).any()
    texts = [e["text"] for e in run.of("persistent")]
    assert texts[-1] == "ipfacediff: the Source clip is not connected (showing black)", texts
    assert run.of("persistent")[-1]["type"] == "OfxMessageError"
    assert_clean_exit(run)


def test_analyze_at_proxy_scale_is_refused_and_nothing_is_sent(ofx_build, tmp_path):
    """Analyze's images come at its action's render scale; a half-size job would be shown
    upscaled at full-scale renders."""
    clip = make_clip(2, 32, 48, 4, np.uint8, seed=13)
    with FakeEngine() as fake:
        run = run_host(ofx_build, tmp_path, clip, [*BASE, f"set:address={fake.address}", "analyze", "status",
                                                   "render:0:1:1:OUT"], proxy=0.5)
        assert fake.submits == []
    assert run.last_status() == ("error: Analyze needs full-resolution frames but the host gives them at render scale "
                                 "0.5 x 0.5 (proxy mode): switch proxy off and press Analyze again")
    assert np.array_equal(run.output(0, 0), clip[0])
    assert_clean_exit(run)


def test_a_render_scale_above_one_shows_the_input_not_an_upscaled_edit(ofx_build, tmp_path):
    clip = make_clip(1, 16, 24, 4, np.uint8, seed=14)
    with FakeEngine() as fake:
        run = run_host(ofx_build, tmp_path, clip, [*BASE, f"set:address={fake.address}", "analyze", f"{WAIT}:30",
                                                   "render:0:1:2:OUT"])
    source_at_2 = clip[0].repeat(2, axis=0).repeat(2, axis=1)  # the host's nearest-neighbour source image
    assert np.array_equal(run.output(0, 0, (32, 48, 4)), source_at_2)
    assert "render scale above 1" in run.of("persistent")[-1]["text"]
    assert_clean_exit(run)


def test_string_parameters_are_read_in_main_thread_actions_only(ofx_build, tmp_path):
    """The test host flags a string parameter read off the main thread; renders on four
    threads use the copy made when the prompt changed (instanceChanged)."""
    clip = make_clip(4, 16, 16, 4, np.uint8, seed=15)
    with FakeEngine() as fake:
        run = run_host(ofx_build, tmp_path, clip, [
            *BASE, f"set:address={fake.address}", "analyze", f"{WAIT}:30", "render:0,1,0,1:4:1:OUT",
            "set:prompt=add a hat", "render:2,3,2,3:4:1:OUT"])
    renders = run.renders()
    for r in renders[:4]:
        assert np.array_equal(run.output(r["time"], r["seq"]), edit(clip[r["time"]])), r
    for r in renders[4:]:  # another prompt: not analysed, the input is shown
        assert np.array_equal(run.output(r["time"], r["seq"]), clip[r["time"]]), r
    assert "not analysed with these settings" in run.of("persistent")[-1]["text"]
    assert_clean_exit(run)


def test_a_reopened_project_follows_its_job_again_from_a_render_thread(ofx_build, tmp_path):
    """The first action after reopening may be a render: it recovers the job from the record
    read at createInstance (no string parameter read off the main thread) without re-uploading."""
    clip = make_clip(2, 16, 16, 4, np.uint8, seed=17)
    with FakeEngine() as fake:
        run = run_host(ofx_build, tmp_path, clip, [
            *BASE, f"set:address={fake.address}", "analyze", f"{WAIT}:30", "reopen", "render:0,1:2:1:OUT",
            f"{WAIT}:30", "render:1,0:2:1:OUT"])
        submits = len(fake.submits)
    assert submits == 1
    assert run.last_status().startswith("done: 2 frame(s)")
    for r in run.renders()[2:]:
        assert np.array_equal(run.output(r["time"], r["seq"]), edit(clip[r["time"]])), r
    assert_clean_exit(run)


def test_engine_parameter_defaults_are_the_engine_settings_defaults(ofx_build, tmp_path):
    """Every parameter whose script name is an engine setting defaults to Settings' default,
    in the describe dump and in what Analyze submits when nothing else is set, and its range
    lies within the setting's bounds."""
    from engine.settings import Settings

    engine_defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    clip = make_clip(1, 16, 16, 4, np.uint8, seed=16)
    with FakeEngine() as fake:
        run = run_host(ofx_build, tmp_path, clip, ["set:prompt=add glasses", f"set:address={fake.address}",
                                                   "analyze", f"{WAIT}:30"])
        (submit,) = fake.submits
    engine_params = {p["script_name"]: p for p in run.of("describe")[0]["params"]
                     if p["script_name"] in engine_defaults}
    assert sorted(engine_params) == ["face_mode", "guidance_scale", "keyframe_interval", "seed", "steps"]
    assert submit["settings"] == {key: engine_defaults[key] for key in engine_params}
    bounds = {f.name: f.metadata for f in dataclasses.fields(Settings)}
    for key, p in engine_params.items():
        declared = p["options"][p["default"]].split()[0] if p["options"] else p["default"]
        assert declared == engine_defaults[key], (key, declared)
        if p["min"] is not None:  # the parameter offers no value the engine refuses
            assert bounds[key].get("low", p["min"]) <= p["min"] <= p["max"] <= bounds[key].get("high", p["max"]), key
    assert_clean_exit(run)


def test_changed_input_is_detected_then_reanalysed(ofx_build, tmp_path):
    clip = make_clip(2, 16, 16, 3, np.uint16, seed=9)
    other = make_clip(2, 16, 16, 3, np.uint16, seed=10)
    other_path = tmp_path / "other.raw"
    other.tofile(other_path)
    with FakeEngine() as fake:
        run = run_host(ofx_build, tmp_path / "run", clip, [
            *BASE, f"set:address={fake.address}", "analyze", f"{WAIT}:30", f"source:{other_path}",
            "render:0:1:1:OUT", "analyze", f"{WAIT}:30", "render:1:1:1:OUT"])
        submits = len(fake.submits)
    first, second = run.renders()
    assert np.array_equal(run.output(0, first["seq"]), other[0])  # passthrough: not the analysed pixels
    assert any("differs from the analysed clip" in e["text"] for e in run.of("persistent"))
    assert submits == 2
    assert np.array_equal(run.output(1, second["seq"]), edit(other[1]))
    assert_clean_exit(run)


@pytest.mark.slow
def test_sessions_under_address_sanitizer(tmp_path):
    """Plugin and host built with AddressSanitizer (LeakSanitizer at exit): threaded renders of
    premultiplied float pixels with negative row bytes, proxy, abort, reopen, a malformed reply
    and an unreachable engine, with no invalid access and no leak."""
    try:
        asan = build("address")
    except BuildError as exc:
        pytest.fail(str(exc), pytrace=False)
    env = {"ASAN_OPTIONS": "detect_leaks=1:exitcode=99"}
    clip = premultiply(make_clip(3, 24, 40, 4, np.float32, seed=11, alpha="edges"))
    with FakeEngine(page_frames=2) as fake:
        run = run_host(asan, tmp_path / "formats", clip, [
            *BASE, f"set:address={fake.address}", "analyze", f"{WAIT}:60", "render:2,0,1,0,2:4:1:OUT",
            "render:1:1:0.5:OUT", "abortrender:0", "reopen", f"{WAIT}:60", "render:1,2:2:1:OUT"],
            premult=True, negative_rowbytes=True, origin=(-8, 4), pad=4, env=env)
        sent = fake.uploads[fake.submits[0]["job"]]
    for r in run.renders()[:5] + run.renders()[-2:]:
        assert np.array_equal(run.output(r["time"], r["seq"]), premultiply(edit(sent[r["time"]]))), r
    assert_clean_exit(run)

    with FakeEngine("result_short_part") as fake:
        run = run_host(asan, tmp_path / "malformed", clip[:2], [
            *BASE, f"set:address={fake.address}", "analyze", "wait:error:30", "render:0,1:2:1:OUT"],
            premult=True, env=env)
    assert run.last_status().startswith("error: malformed reply")
    assert_clean_exit(run)

    from serverkit import free_port

    run = run_host(asan, tmp_path / "down", clip[:1], [
        *BASE, f"set:address=tcp://127.0.0.1:{free_port()}", "analyze", "wait:engine unreachable:30",
        "render:0:2:1:OUT"], premult=True, env=env)
    assert np.array_equal(run.output(0, 0), clip[0])
    assert_clean_exit(run)
