"""Pictures of a run: feature-map PNGs, sliding-window GIFs, the terminal preview.

The tests open what was written with Pillow and look at sizes, frame counts and the colours of known
cells; the window geometry is checked against torch as the oracle.
"""

import ast
import io
import os
import re
import runpy
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as hs
from PIL import Image
from rich.console import Console

import cnnops.io.write
import cnnops.pictures
from cnnops.choices import ColorMap, Scale
from cnnops.errors import InputError, SettingError
from cnnops.model.windows import avg_pool_divisor, padded_index, stage_windows, window_reads
from cnnops.pictures.animation import animate
from cnnops.pictures.colour import NEGATIVE_RGB, POSITIVE_RGB, WHITE_RGB
from cnnops.pictures.maps import BORDER, FAINT, INK, save_maps
from cnnops.pictures.preview import preview
from cnnops.run.pipeline import run_pipeline
from cnnops.spec import parse_stage, parse_stages

ROOT = Path(__file__).resolve().parent.parent
PICTURES = Path(cnnops.pictures.__file__).parent
MODULES = sorted(f"cnnops.pictures.{p.stem}" for p in PICTURES.glob("*.py") if p.stem != "__init__")
GRID4 = [[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]
EDGES = "Conv2d(1, 2, 2, weight=[[[1, 0], [0, -1]], [[0, 1], [1, 0]]], bias=False)"


def as_option(name, value):
    """How the command line spells a setting a message names (``batch_item`` → ``--batch-item``)."""
    return f"--{name.replace('_', '-')}" + ("" if value is None else f" {value}")


def run(data, *stages, **options):
    return run_pipeline(np.asarray(data, dtype=np.float32), parse_stages(list(stages)), **options)


@pytest.fixture(scope="module")
def pool_run():
    """The tutorial's 4×4 grid through an edge filter bank, ReLU, a 2×2 max pool and its unpool."""
    return run(GRID4, EDGES, "ReLU", "MaxPool2d(2, stride=1)", "MaxUnpool2d(2, stride=1)")


def rgb(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def plane_boxes(pixels: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(top, left, bottom, right) of every plane, inside its BORDER frame, in reading order."""
    frame = np.all(pixels == BORDER, axis=-1)
    boxes = []
    for y, x in zip(*np.nonzero(frame), strict=True):
        if (y and frame[y - 1, x]) or (x and frame[y, x - 1]):
            continue  # not a top-left corner
        bottom, right = y, x
        while bottom + 1 < frame.shape[0] and frame[bottom + 1, x]:
            bottom += 1
        while right + 1 < frame.shape[1] and frame[y, right + 1]:
            right += 1
        boxes.append((int(y) + 1, int(x) + 1, int(bottom), int(right)))
    return boxes


def plane_pixels(pixels: np.ndarray, box, shape) -> np.ndarray:
    """The plane's colours, one per tensor cell (the upscaled picture sampled at each cell)."""
    top, left, bottom, right = box
    h, w = shape
    fy, fx = (bottom - top) // h, (right - left) // w
    assert (bottom - top, right - left) == (h * fy, w * fx), "planes are upscaled by whole factors"
    return pixels[top:bottom:fy, left:right:fx]


# ---------------------------------------------------------------------------------------------- save_maps


def test_maps_are_named_in_pipeline_order_and_sort_that_way(pool_run, tmp_path):
    paths = save_maps(pool_run, str(tmp_path / "maps"))
    names = [os.path.basename(p) for p in paths]
    assert names == ["00-input.png", "01-conv2d-filters.png", "01-conv2d.png", "02-relu.png", "03-maxpool2d.png",
                     "04-maxunpool2d.png"]  # fmt: skip
    assert sorted(os.listdir(tmp_path / "maps")) == names
    assert all(Image.open(p).format == "PNG" for p in paths)


def test_names_widen_to_three_digits_for_a_hundred_stages(tmp_path):
    result = run([[1.0, -2.0]], *["ReLU"] * 100)
    names = [os.path.basename(p) for p in save_maps(result, str(tmp_path))]
    assert names[:2] == ["000-input.png", "001-relu.png"] and names[-1] == "100-relu.png"
    assert sorted(names) == names


def maps_only(paths: list[str]) -> list[str]:
    """The tensors' pictures, without the filters' pictures."""
    return [p for p in paths if not p.endswith("-filters.png")]


def test_every_channel_plane_is_tiled_at_the_same_pixels_per_cell(pool_run, tmp_path):
    paths = maps_only(save_maps(pool_run, str(tmp_path)))
    conv = rgb(paths[1])
    boxes = plane_boxes(conv)
    assert len(boxes) == 2  # Conv2d(1, 2, …): two channel planes
    tensors = [pool_run.input.reshape(1, 4, 4)] + [r.output for r in pool_run.results]
    for path, tensor in zip(paths, tensors, strict=True):
        for top, left, bottom, right in plane_boxes(rgb(path)):
            # the 4×4 input's longer side reaches 96: 24 pixels a cell, for every tensor of the run
            assert (bottom - top, right - left) == (24 * tensor.shape[-2], 24 * tensor.shape[-1])
    assert [len(plane_boxes(rgb(p))) for p in paths] == [1, 2, 2, 2, 2]


def test_a_pooled_map_is_drawn_at_its_true_relative_size(tmp_path):
    paths = maps_only(save_maps(run(np.arange(64.0).reshape(8, 8), "MaxPool2d(2)"), str(tmp_path)))
    (before,), (after,) = (plane_boxes(rgb(p)) for p in paths)
    assert before[2] - before[0] == 2 * (after[2] - after[0]) and before[3] - before[1] == 2 * (after[3] - after[1])


def test_axis_ticks_and_a_colour_bar_are_drawn(tmp_path):
    from cnnops.pictures.maps import BAR_H, BAR_W, tick_step

    (path,) = save_maps(run(np.arange(64.0 * 64).reshape(64, 64)), str(tmp_path))
    pixels = rgb(path)
    (top, left, bottom, right) = plane_boxes(pixels)[0]
    faint = np.all(pixels == FAINT, axis=-1)
    # tick marks: 3-pixel strokes above the plane every tick_step cells (64 cells, 2 px a cell: every 10)
    step = tick_step(64, 2, 0)
    assert tick_step(64, 2, 18) == 10 and step == 1
    ticks = np.nonzero(faint[top - 4, left : right])[0]
    assert len(ticks) == 7 and (np.diff(ticks) == 20).all()  # cells 0, 10, …, 60
    rows = np.nonzero(faint[top:bottom, left - 4])[0]
    assert len(rows) == 7
    # the colour bar: a gray ramp from black to white under the header
    above = top - 40  # above the tile's captions and ticks
    ramps = [pixels[y, 8 : 8 + BAR_W, 0].astype(int) for y in range(above)]
    bar = [r for r in ramps if r[0] == 0 and r[-1] == 255 and (np.diff(r) >= 0).all()]
    assert len(bar) == BAR_H


def test_filters_are_one_picture_and_a_colour_input_gets_an_rgb_composite(tmp_path):
    from cnnops.io.read import read_input

    tensor = read_input(str(Path(__file__).resolve().parent.parent / "examples" / "street-rgb.png"), rgb=True)
    paths = save_maps(run(tensor.data, "Conv2d(3, 2, 3)"), str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["00-input.png", "01-conv2d-filters.png", "01-conv2d.png"]
    filters = rgb(paths[1])
    assert len(plane_boxes(filters)) == 2 * 3  # out × in kernels
    inputs = rgb(paths[0])
    boxes = plane_boxes(inputs)
    assert len(boxes) == 4  # three channel planes and their composite
    top, left, bottom, right = boxes[-1]
    composite = inputs[top:bottom, left:right].astype(int)
    assert (np.abs(composite[..., 0] - composite[..., 2]) > 60).any()  # colours, not gray
    # the composite is the image itself, 2 pixels a cell
    assert (composite[::2, ::2] == np.rint(np.moveaxis(tensor.data, 0, -1) * 255)).all()


def test_gray_plane_maximum_is_white_and_minimum_black(tmp_path):
    data = np.array([[0.2, 0.9, 0.4], [0.1, 0.5, 0.7]], dtype=np.float32)
    (path,) = save_maps(run(data), str(tmp_path))
    pixels = rgb(path)
    (box,) = plane_boxes(pixels)
    cells = plane_pixels(pixels, box, data.shape)
    gray = cells[..., 0].astype(int)
    assert (cells[..., 0] == cells[..., 1]).all() and (cells[..., 1] == cells[..., 2]).all()
    assert np.unravel_index(gray.argmax(), gray.shape) == np.unravel_index(data.argmax(), data.shape)
    assert gray.max() == 255 and gray.min() == 0
    assert (np.argsort(gray, axis=None) == np.argsort(data, axis=None)).all()  # brighter means larger


def test_signed_map_is_blue_for_negative_white_for_zero_red_for_positive(tmp_path):
    result = run([[0, 0, 0], [0, 1, 0], [0, 0, 0]], "Conv2d(1, 1, 2, weight=[[1, -1], [0, 0]], bias=False)")
    conv = result.results[0].output[0]  # [[0, 0], [-1, 1]]
    paths = maps_only(save_maps(result, str(tmp_path)))
    pixels = rgb(paths[1])
    (box,) = plane_boxes(pixels)
    cells = plane_pixels(pixels, box, conv.shape)
    for (i, j), value in np.ndenumerate(conv):
        colour = tuple(int(c) for c in cells[i, j])
        if value < 0:
            assert colour == NEGATIVE_RGB and colour[2] > colour[0]
        elif value > 0:
            assert colour == POSITIVE_RGB and colour[0] > colour[2]
        else:
            assert colour == WHITE_RGB
    assert (conv < 0).any() and (conv > 0).any() and (conv == 0).any()


def test_auto_colour_map_is_gray_for_images_and_after_relu_signed_for_conv(pool_run, tmp_path):
    paths = maps_only(save_maps(pool_run, str(tmp_path)))

    def is_gray(path):
        pixels = rgb(path)
        return all(
            (p[..., 0] == p[..., 1]).all() and (p[..., 1] == p[..., 2]).all()
            for p in (pixels[t:b, left:r] for t, left, b, r in plane_boxes(pixels))
        )

    assert [is_gray(p) for p in paths] == [True, False, True, True, True]


def test_explicit_gray_map_on_signed_data(pool_run, tmp_path):
    paths = maps_only(save_maps(pool_run, str(tmp_path), cmap=ColorMap.gray))
    pixels = rgb(paths[1])
    for top, left, bottom, right in plane_boxes(pixels):
        plane = pixels[top:bottom, left:right].astype(int)
        assert (plane[..., 0] == plane[..., 2]).all() and plane.min() == 0 and plane.max() == 255


def test_shared_scale_keeps_a_weaker_plane_darker(tmp_path):
    data = np.stack([np.arange(9.0).reshape(3, 3), np.arange(9.0).reshape(3, 3) / 4])
    brightest = {}
    for scale in Scale:
        (path,) = save_maps(run(data), str(tmp_path / scale.value), scale=scale)
        pixels = rgb(path)
        brightest[scale] = [int(pixels[t:b, lf:r].max()) for t, lf, b, r in plane_boxes(pixels)]
    assert brightest[Scale.plane] == [255, 255]
    assert brightest[Scale.shared][0] == 255 and brightest[Scale.shared][1] == round(255 * 2 / 8)


def test_labels_are_drawn_above_each_plane_and_in_the_header(pool_run, tmp_path):
    paths = maps_only(save_maps(pool_run, str(tmp_path)))
    pixels = rgb(paths[1])
    ink = np.all(pixels == INK, axis=-1)
    boxes = plane_boxes(pixels)
    assert ink[: boxes[0][0] - 30].any()  # the header: stage text and shape
    for top, left, _, right in boxes:
        assert ink[top - 40 : top - 26, left : right + 1].sum() >= 15  # "ch 0", over its value range and ticks


def test_one_d_channels_are_strips_stacked_in_one_column(tmp_path):
    result = run([[1, 5, 2, 8, 3, 0, 4, 4, 7]], "Conv1d(1, 3, 3)", "Flatten(0)", "Linear(21, 4)")
    paths = maps_only(save_maps(result, str(tmp_path)))
    conv = plane_boxes(rgb(paths[1]))
    assert len(conv) == 3 and len({left for _, left, _, _ in conv}) == 1
    for top, left, bottom, right in conv:
        # 7 long, ×5 (the 21-long flatten's longer side reaches 96); at least 12 pixels high
        assert right - left == 7 * 5 and bottom - top == 12
    assert len(plane_boxes(rgb(paths[-1]))) == 1  # Linear's (4,) output: one strip


def test_batch_item_picks_the_item_and_out_of_range_names_the_batch_size(tmp_path):
    data = np.stack([np.arange(16.0).reshape(1, 4, 4), -np.arange(16.0).reshape(1, 4, 4)])
    result = run(data, "MaxPool2d(2)")
    first = save_maps(result, str(tmp_path / "a"))
    second = save_maps(result, str(tmp_path / "b"), batch_item=1)
    assert Path(first[0]).read_bytes() != Path(second[0]).read_bytes()
    with pytest.raises(InputError, match="batch item 2 is out of range: the batch has 2 items — use batch_item 0 to 1"):
        save_maps(result, str(tmp_path / "c"), batch_item=2)
    assert not (tmp_path / "c").exists()  # checked before anything is created
    with pytest.raises(InputError, match="the batch has 1 item — use batch_item 0$") as refused:
        save_maps(run(GRID4), str(tmp_path / "d"), batch_item=1)
    assert refused.value.worded(as_option).endswith("— use --batch-item 0"), "the setting is named, not spelled"


def test_same_input_gives_the_same_bytes(pool_run, tmp_path):
    first = save_maps(pool_run, str(tmp_path / "a"), scale=Scale.shared)
    second = save_maps(pool_run, str(tmp_path / "b"), scale=Scale.shared)
    assert [Path(p).read_bytes() for p in first] == [Path(p).read_bytes() for p in second]


def test_a_file_in_the_way_of_the_directory_is_an_input_error(pool_run, tmp_path):
    blocker = tmp_path / "maps"
    blocker.write_text("not a directory")
    with pytest.raises(InputError, match="exists and is not a directory"):
        save_maps(pool_run, str(blocker))
    assert blocker.read_text() == "not a directory"


def test_nested_directory_is_created(pool_run, tmp_path):
    paths = save_maps(pool_run, str(tmp_path / "a" / "b"))
    assert all(Path(p).parent == tmp_path / "a" / "b" for p in paths)


def test_failed_write_leaves_no_temp_file_and_keeps_the_old_picture(pool_run, tmp_path, monkeypatch):
    paths = save_maps(pool_run, str(tmp_path))
    before = Path(paths[0]).read_bytes()

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cnnops.io.write.os, "replace", fail)
    with pytest.raises(InputError, match="No space left on device"):
        save_maps(pool_run, str(tmp_path), cmap=ColorMap.signed)
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in paths)
    assert Path(paths[0]).read_bytes() == before


def test_nan_is_drawn_magenta_and_an_empty_batch_is_refused(tmp_path):
    (path,) = save_maps(run([[1.0, float("nan")], [0.0, 2.0]]), str(tmp_path / "nan"))
    pixels = rgb(path)
    (box,) = plane_boxes(pixels)
    assert tuple(plane_pixels(pixels, box, (2, 2))[0, 1]) == (255, 0, 255)
    empty = run(np.zeros((0, 1, 4, 4)), "AvgPool2d(2)")
    with pytest.raises(InputError, match="the batch is empty"):
        save_maps(empty, str(tmp_path / "empty"))
    with pytest.raises(InputError, match="the batch is empty"):
        animate(empty, 1, str(tmp_path / "empty.gif"))
    (path,) = save_maps(run(np.zeros((0, 3))), str(tmp_path / "no-columns"))  # (0, 3): one empty plane
    assert plane_boxes(rgb(path)) == []


# ---------------------------------------------------------------------------------------------- animate


def gif_frames(path) -> list[np.ndarray]:
    with Image.open(path) as image:
        assert image.info["loop"] == 0 and image.info["duration"] == 400
        frames = []
        for k in range(image.n_frames):
            image.seek(k)
            frames.append(np.asarray(image.convert("RGB")))
        return frames


def count(frame: np.ndarray, colour) -> int:
    return int(np.all(frame == colour, axis=-1).sum())


@pytest.mark.parametrize(
    ("stage", "data", "cells"),
    [
        ("MaxPool2d(2, stride=1)", GRID4, 9),
        ("MaxPool2d(2)", GRID4, 4),
        ("AvgPool2d(3, stride=2, padding=1, ceil_mode=True)", np.arange(25.0).reshape(5, 5), 9),
        ("Conv2d(1, 1, 3, padding=1, padding_mode='reflect')", np.arange(25.0).reshape(5, 5), 25),
        ("Conv2d(1, 1, 2, dilation=2)", np.arange(16.0).reshape(4, 4), 4),
        ("AdaptiveAvgPool2d((2, 3))", np.arange(20.0).reshape(4, 5), 6),
        ("AdaptiveMaxPool1d(4)", [[1, 5, 2, 8, 3, 0, 4]], 4),
        ("MaxPool1d(2, ceil_mode=True)", [[1, 5, 2, 8, 3, 0, 4, 4, 7]], 5),
    ],
)
def test_one_frame_per_output_cell(stage, data, cells, tmp_path):
    path = str(tmp_path / "a.gif")
    assert animate(run(data, stage), 1, path) == cells
    assert len(gif_frames(path)) == cells


def test_max_pool_frames_mark_the_winner_and_fill_the_output(tmp_path):
    from cnnops.pictures.grid import CURRENT, EMPTY, PALETTE, WINDOW, WINNER

    path = str(tmp_path / "pool.gif")
    animate(run(GRID4, "MaxPool2d(2, stride=1)"), 1, path)
    frames = gif_frames(path)
    empty = [count(f, PALETTE[EMPTY]) for f in frames]
    assert all(count(f, PALETTE[WINNER]) > 0 and count(f, PALETTE[WINDOW]) > 0 for f in frames)
    assert all(count(f, PALETTE[CURRENT]) > 0 for f in frames)
    assert empty == sorted(empty, reverse=True) and len(set(empty)) == len(empty) and empty[-1] == 0


def test_average_pool_marks_no_winner(tmp_path):
    from cnnops.pictures.grid import PALETTE, WINNER

    path = str(tmp_path / "avg.gif")
    animate(run(GRID4, "AvgPool2d(2)"), 1, path)
    assert all(count(f, PALETTE[WINNER]) == 0 for f in gif_frames(path))


def test_winner_cell_is_at_the_saved_index(tmp_path):
    """The red frame sits on the input cell of the max pool's index: top-left first, bottom-right last."""
    from cnnops.pictures.grid import PALETTE, WINNER

    data = np.zeros((4, 4))
    data[0, 0], data[3, 3] = 9, 9  # the first window's winner is top-left, the last one's bottom-right
    path = str(tmp_path / "w.gif")
    animate(run(data, "MaxPool2d(2)"), 1, path)
    frames = gif_frames(path)
    first, last = (np.nonzero(np.all(f == PALETTE[WINNER], axis=-1)) for f in (frames[0], frames[-1]))
    assert first[0].mean() < last[0].mean() and first[1].mean() < last[1].mean()  # rows, then columns


def test_unpool_has_one_frame_per_input_cell(pool_run, tmp_path):
    from cnnops.pictures.grid import ARROW, PALETTE

    path = str(tmp_path / "unpool.gif")
    assert animate(pool_run, 4, path, channel=1) == 4  # the 2×2 pooled plane
    frames = gif_frames(path)
    assert len(frames) == 4 and all(count(f, PALETTE[ARROW]) > 0 for f in frames)


def test_unpool_without_a_pool_in_the_run_needs_the_indices(tmp_path):
    indices = np.array([[[5, 7], [8, 15]]])
    result = run([[[6, 8], [3, 4]]], "MaxUnpool2d(2)", indices=indices)
    with pytest.raises(InputError, match="needs the max-pool indices"):
        animate(result, 1, str(tmp_path / "u.gif"))
    assert animate(result, 1, str(tmp_path / "u.gif"), indices=indices) == 4


def test_animation_bytes_are_deterministic(tmp_path):
    result = run(np.arange(36.0).reshape(6, 6) % 7, "Conv2d(1, 1, 3, padding=1, stride=2)")
    a, b = str(tmp_path / "a.gif"), str(tmp_path / "b.gif")
    animate(result, 1, a)
    animate(result, 1, b)
    assert Path(a).read_bytes() == Path(b).read_bytes()


def test_planes_over_16_by_16_are_cropped_to_the_top_left_16_by_16_and_the_caption_says_so(tmp_path):
    from cnnops.pictures.animation import Crop
    from cnnops.pictures.font import LINE_H

    data = np.arange(64.0 * 64).reshape(64, 64)
    path = str(tmp_path / "a.gif")
    assert animate(run(data, "MaxPool2d(2)"), 1, path) == 64  # the 8×8 outputs whose windows lie in the top-left 16×16
    whole = str(tmp_path / "whole.gif")
    assert animate(run(data[:16, :16], "MaxPool2d(2)"), 1, whole) == 64
    (w, h), (w16, h16) = Image.open(path).size, Image.open(whole).size
    assert w == w16 and h == h16 + LINE_H  # the same 16×16 grid, with the crop's caption line
    crop = Crop(0, 0, 16, 16, given=False).caption((64, 64), 2)
    assert crop == "crop: input rows 0-15, columns 0-15 of 64x64 (the top-left 16x16 by default; choose with \x00crop\x00)"


def test_crop_picks_the_windows_inside_it(tmp_path):
    from cnnops.pictures.animation import parse_crop

    result = run(np.arange(40.0 * 30).reshape(40, 30), "Conv2d(1, 1, 3, stride=2)")
    path = str(tmp_path / "c.gif")
    # input rows 10..19, columns 4..11: conv windows starting at even rows 10..16 and even columns 4..8
    assert animate(result, 1, path, crop=parse_crop((10, 4, 10, 8))) == 4 * 3
    with pytest.raises(SettingError, match="larger than 32×32"):
        parse_crop((0, 0, 40, 40))
    with pytest.raises(SettingError, match="no window fits inside"):
        animate(result, 1, path, crop=parse_crop((0, 0, 2, 2)))
    with pytest.raises(SettingError, match="starts outside the 40×30 input plane"):
        animate(result, 1, path, crop=parse_crop((50, 0, 2, 2)))


def test_zoom_scales_every_frame(tmp_path):
    result = run(GRID4, "MaxPool2d(2)")
    one, three = str(tmp_path / "1.gif"), str(tmp_path / "3.gif")
    animate(result, 1, one)
    animate(result, 1, three, zoom=3)
    small, big = Image.open(one), Image.open(three)
    assert big.size == (3 * small.size[0], 3 * small.size[1]) and big.n_frames == small.n_frames == 4


def test_one_gif_for_a_chain_frame_by_frame(tmp_path):
    from cnnops.pictures.animation import animate_chain

    result = run(np.arange(25.0).reshape(5, 5) % 4 - 1, "Conv2d(1, 1, 3, weight='gx')", "ReLU", "MaxPool2d(2, stride=1)",
                 "Flatten")  # fmt: skip
    path = str(tmp_path / "chain.gif")
    # 9 conv outputs, one frame for ReLU, 4 max-pool outputs, one frame saying Flatten is not drawn
    assert animate_chain(result, path) == 9 + 1 + 4 + 1
    image = Image.open(path)
    assert image.n_frames == 15
    durations = []
    for k in range(image.n_frames):
        image.seek(k)
        durations.append(image.info["duration"])
    assert durations[8] == durations[9] == durations[13] == 1600 and durations[0] == 400


def test_transposed_conv_is_a_scatter_one_frame_per_input_cell(tmp_path):
    from cnnops.pictures.grid import CURRENT, PALETTE, WINDOW

    result = run([[1.0, 2.0], [3.0, 4.0]], "ConvTranspose2d(1, 1, 3, stride=2)")
    path = str(tmp_path / "t.gif")
    assert animate(result, 1, path) == 4
    frames = gif_frames(path)
    # each frame marks one input cell and the 3×3 stamp of output cells it adds to
    assert all(count(f, PALETTE[WINDOW]) > 0 and count(f, PALETTE[CURRENT]) > 0 for f in frames)
    stamped = [count(f, PALETTE[CURRENT]) for f in frames]
    assert max(stamped) < 1.1 * min(stamped)  # nine cells each (their numbers differ)


def test_stage_that_does_not_slide_is_refused(pool_run, tmp_path):
    with pytest.raises(InputError, match=r"stage 2 ReLU\(\) has no sliding window .* pick one of stages 1, 3, 4"):
        animate(pool_run, 2, str(tmp_path / "a.gif"))
    with pytest.raises(InputError, match="there is no stage 5: the run has 4 stages"):
        animate(pool_run, 5, str(tmp_path / "a.gif"))


def test_channel_and_batch_item_out_of_range(tmp_path):
    result = run(np.zeros((2, 3, 4, 4)), "Conv2d(3, 6, 3, groups=3)")
    with pytest.raises(InputError, match="channel 6 is out of range: .* 6 output channels — use channel 0 to 5") as bad:
        animate(result, 1, str(tmp_path / "a.gif"), channel=6)
    assert bad.value.worded(as_option).endswith("— use --channel 0 to 5")
    with pytest.raises(InputError, match="the batch has 2 items — use batch_item 0 to 1"):
        animate(result, 1, str(tmp_path / "a.gif"), batch_item=2)
    assert animate(result, 1, str(tmp_path / "a.gif"), batch_item=1, channel=5) == 4


def test_failed_gif_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def fail(*args):
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(cnnops.io.write.os, "replace", fail)
    with pytest.raises(InputError, match="Permission denied"):
        animate(run(GRID4, "MaxPool2d(2)"), 1, str(tmp_path / "a.gif"))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- geometry vs torch

SIZES = hs.integers(1, 8)


@settings(max_examples=150, deadline=None)
@given(h=SIZES, w=SIZES, k=hs.tuples(hs.integers(1, 4), hs.integers(1, 4)), s=hs.tuples(hs.integers(1, 3), hs.integers(1, 3)),
       d=hs.tuples(hs.integers(1, 3), hs.integers(1, 3)), ceil=hs.booleans(), pad=hs.data(), seed=hs.integers(0, 99))  # fmt: skip
def test_max_pool_winner_is_inside_the_drawn_window(h, w, k, s, d, ceil, pad, seed):
    p = (pad.draw(hs.integers(0, k[0] // 2)), pad.draw(hs.integers(0, k[1] // 2)))
    x = torch.tensor(np.random.default_rng(seed).normal(size=(1, 1, h, w)), dtype=torch.float32)
    try:
        y, idx = F.max_pool2d(x, k, s, p, d, ceil_mode=ceil, return_indices=True)
    except RuntimeError:
        return  # a configuration torch rejects (the shape model refuses it too)
    stage = parse_stage(f"MaxPool2d({k}, stride={s}, padding={p}, dilation={d}, ceil_mode={ceil})")
    ay, ax = stage_windows(stage, (h, w), tuple(y.shape[-2:]))
    xn = x[0, 0].numpy()
    for (oy, ox), value in np.ndenumerate(y[0, 0].numpy()):
        inside = [(i, j) for i in ay.taps[oy] for j in ax.taps[ox] if 0 <= i < h and 0 <= j < w]
        if not inside:
            assert value == -np.inf  # a dilated window that reads only padding
            continue
        winner = divmod(int(idx[0, 0, oy, ox]), w)
        assert window_reads(ay, ax, oy, ox, winner)
        assert value == max(xn[c] for c in inside)


@settings(max_examples=150, deadline=None)
@given(h=SIZES, w=SIZES, k=hs.tuples(hs.integers(1, 4), hs.integers(1, 4)), s=hs.tuples(hs.integers(1, 3), hs.integers(1, 3)),
       ceil=hs.booleans(), include=hs.booleans(), override=hs.sampled_from([None, 3]), pad=hs.data())  # fmt: skip
def test_average_pool_window_and_divisor_match_torch(h, w, k, s, ceil, include, override, pad):
    p = (pad.draw(hs.integers(0, k[0] // 2)), pad.draw(hs.integers(0, k[1] // 2)))
    x = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w) % 5
    try:
        y = F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=include, divisor_override=override)
    except RuntimeError:
        return
    stage = parse_stage(
        f"AvgPool2d({k}, stride={s}, padding={p}, ceil_mode={ceil}, count_include_pad={include}, divisor_override={override})"
    )
    ay, ax = stage_windows(stage, (h, w), tuple(y.shape[-2:]))
    xn = x[0, 0].double().numpy()
    for (oy, ox), value in np.ndenumerate(y[0, 0].numpy()):
        total = sum(xn[i, j] for i in ay.taps[oy] for j in ax.taps[ox] if 0 <= i < h and 0 <= j < w)
        assert total / avg_pool_divisor(stage, ay, ax, oy, ox, 2) == pytest.approx(value, abs=1e-5)


@settings(max_examples=150, deadline=None)
@given(h=SIZES, w=SIZES, k=hs.tuples(hs.integers(1, 3), hs.integers(1, 3)), s=hs.tuples(hs.integers(1, 2), hs.integers(1, 2)),
       d=hs.tuples(hs.integers(1, 2), hs.integers(1, 2)), p=hs.sampled_from(["same", (0, 0), (1, 0), (2, 1)]),
       mode=hs.sampled_from(["zeros", "reflect", "replicate", "circular"]), seed=hs.integers(0, 99))  # fmt: skip
def test_conv_taps_and_padding_values_match_torch(h, w, k, s, d, p, mode, seed):
    if p == "same":
        s = (1, 1)
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.normal(size=(1, 1, h, w)), dtype=torch.float64)
    weight = torch.tensor(rng.normal(size=(1, 1, *k)), dtype=torch.float64)
    conv = torch.nn.Conv2d(1, 1, k, s, p, d, padding_mode=mode, bias=False).double()
    conv.weight.data = weight
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about 'same' with an even kernel
            y = conv(x).detach()
    except RuntimeError:
        return
    stage = parse_stage(f"Conv2d(1, 1, {k}, stride={s}, padding={p!r}, dilation={d}, padding_mode='{mode}')")
    ay, ax = stage_windows(stage, (h, w), tuple(y.shape[-2:]))
    xn, wn = x[0, 0].numpy(), weight[0, 0].numpy()

    def read(i, j):
        if mode == "zeros":
            return xn[i, j] if 0 <= i < h and 0 <= j < w else 0.0
        return xn[padded_index(i, h, mode), padded_index(j, w, mode)]

    for (oy, ox), value in np.ndenumerate(y[0, 0].numpy()):
        total = sum(read(i, j) * wn[a, b] for a, i in enumerate(ay.taps[oy]) for b, j in enumerate(ax.taps[ox]))
        assert total == pytest.approx(value, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(h=SIZES, w=SIZES, oh=hs.integers(1, 10), ow=hs.integers(1, 10))
def test_adaptive_bins_match_torch(h, w, oh, ow):
    x = torch.arange(h * w, dtype=torch.float64).reshape(1, 1, h, w) ** 1.5
    y = F.adaptive_avg_pool2d(x, (oh, ow))
    ay, ax = stage_windows(parse_stage(f"AdaptiveAvgPool2d(({oh}, {ow}))"), (h, w), (oh, ow))
    xn = x[0, 0].numpy()
    for (oy, ox), value in np.ndenumerate(y[0, 0].numpy()):
        assert np.mean([xn[i, j] for i in ay.taps[oy] for j in ax.taps[ox]]) == pytest.approx(value)


# ---------------------------------------------------------------------------------------------- preview


def record(renderable, color_system="truecolor", width=80) -> str:
    console = Console(record=True, color_system=color_system, width=width, file=io.StringIO())
    console.print(renderable)
    return console.file.getvalue()


def colours(text: str, layer: str = "38") -> set[tuple[int, int, int]]:
    return {tuple(map(int, m)) for m in re.findall(layer + r";2;(\d+);(\d+);(\d+)", text)}


def test_preview_draws_half_blocks_in_true_colour(pool_run):
    text = record(preview(pool_run))
    assert "▀" in text
    assert colours(text, "38") and colours(text, "48")  # foreground: upper pixel, background: lower
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    for title in ("00 input", "01 Conv2d", "02 ReLU()", "03 MaxPool2d(2, stride=1)", "04 MaxUnpool2d"):
        assert title in plain
    assert "ch 1" in plain


def test_preview_uses_gray_for_images_and_the_signed_map_for_signed_data(pool_run):
    images = colours(record(preview(run(GRID4, "ReLU"))))
    assert images and all(r == g == b for r, g, b in images)
    signed = colours(
        record(preview(run([[0, 0, 0], [0, 1, 0], [0, 0, 0]], "Conv2d(1, 1, 2, weight=[[1, -1], [0, 0]], bias=False)")))
    )
    assert NEGATIVE_RGB in signed and POSITIVE_RGB in signed


def test_preview_without_colour_draws_a_character_ramp_without_escape_codes(pool_run):
    text = record(preview(pool_run), color_system=None)
    assert "▀" not in text and "\x1b" not in text
    assert "@" in text and " " in text, "dark and light cells differ"


def test_preview_downsamples_to_fit_the_width():
    street = np.asarray(Image.open(ROOT / "examples" / "street.png"), dtype=np.float32) / 255
    text = record(preview(run(street), width=30), color_system=None, width=80)
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 30
    assert sum("▀" in line for line in lines) <= 16  # 64 pixel rows averaged into ≤ 32: ≤ 16 lines


def test_preview_shows_at_most_sixteen_planes_and_says_so():
    text = record(preview(run(np.zeros((20, 2, 2)))), color_system=None, width=200)
    assert "ch 15" in text and "ch 16" not in text and "4 more planes" in text


def test_preview_batch_item_out_of_range():
    with pytest.raises(InputError, match="the batch has 1 item"):
        preview(run(GRID4), batch_item=3)


# ---------------------------------------------------------------------------------------------- module rules and example


def test_importing_any_picture_module_loads_neither_numpy_nor_pil():
    assert {"cnnops.pictures.maps", "cnnops.pictures.preview", "cnnops.pictures.animation"} <= set(MODULES)
    code = f"import sys, {', '.join(MODULES)}; assert 'numpy' not in sys.modules and 'PIL' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def picture_imports(module: str) -> set[str]:
    """The cnnops.pictures modules ``module`` imports, at the top or inside functions."""
    tree = ast.parse((PICTURES / f"{module.rsplit('.', 1)[-1]}.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "cnnops.pictures":
            names |= {f"cnnops.pictures.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return {name for name in names if name.startswith("cnnops.pictures.")}


def test_picture_modules_import_one_way_and_only_callers_outside_import_animation():
    graph = {module: picture_imports(module) for module in MODULES}
    assert not any("cnnops.pictures.animation" in imports for imports in graph.values())
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import circle: {' -> '.join((*path, module))}"
        if module not in done:
            for imported in graph[module]:
                visit(imported, (*path, module))
            done.add(module)

    for module in MODULES:
        visit(module, ())


def test_picture_messages_name_settings_not_command_line_flags():
    """Only the CLI spells options; the pictures name settings with cnnops.errors.setting."""
    for path in PICTURES.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not re.search(r"--[a-z]", node.value), f"{path.name}: {node.value!r}"


def test_example_script_writes_a_map_per_stage_and_the_pool_animation(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["visualize_maxpool.py", str(tmp_path)])
    runpy.run_path(str(ROOT / "examples" / "visualize_maxpool.py"), run_name="__main__")
    names = sorted(os.listdir(tmp_path))
    assert names == ["00-input.png", "01-conv2d-filters.png", "01-conv2d.png", "02-relu.png", "03-maxpool2d.png",
                     "maxpool.gif"]  # fmt: skip
    assert len(plane_boxes(rgb(tmp_path / "01-conv2d.png"))) == 4
    with Image.open(tmp_path / "maxpool.gif") as gif:
        assert gif.n_frames == 36  # MaxPool2d(2) on the 13×13 map of the 16×16 crop: 6×6 cells
    assert "36 frames" in capsys.readouterr().out
