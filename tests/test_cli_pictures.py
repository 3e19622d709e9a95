"""The picture options of the data commands: --save-maps, --animate, --preview."""

import json
import os
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from cnnops.cli import app

EX = Path(__file__).resolve().parent.parent / "examples"
runner = CliRunner()
BANK = "Conv2d(1, 4, 4, weight='vertical-edge, -vertical-edge, vertical-edge.T, -vertical-edge.T', bias=False)"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "120"})


def test_save_maps_writes_one_png_per_stage_in_pipeline_order(tmp_path):
    result = invoke("run", EX / "street.png", BANK, "relu", "maxpool:2", "--save-maps", tmp_path / "maps", "-q")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert names == ["00-input.png", "01-conv2d-filters.png", "01-conv2d.png", "02-relu.png", "03-maxpool2d.png"]
    assert Image.open(tmp_path / "maps" / "01-conv2d.png").size[0] > 2 * 61


def test_save_maps_in_a_batch_goes_to_one_directory_per_input(tmp_path):
    result = invoke("relu", EX / "grid4x4.json", EX / "ones4x4.json", "--save-maps", tmp_path, "-q")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid4x4", "ones4x4"]
    assert sorted(p.name for p in (tmp_path / "grid4x4").iterdir()) == ["00-input.png", "01-relu.png"]


def test_animate_has_one_frame_per_output_cell(tmp_path):
    gif = tmp_path / "pool.gif"
    result = invoke("pool", "-k", "2", "-s", "1", EX / "grid4x4.json", "--animate", gif, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"]["shape"] == [1, 3, 3], "--json output stays clean"
    assert Image.open(gif).n_frames == 9


def test_animate_picks_a_stage_and_refuses_big_planes(tmp_path):
    gif = tmp_path / "a.gif"
    result = invoke("run", EX / "line5x5.json", "Conv2d(1, 1, 3, weight='gx')", "relu", "maxpool:2,stride=1",
                    "--animate", gif, "--animate-stage", "3", "-q")  # fmt: skip
    assert result.exit_code == 0 and Image.open(gif).n_frames == 4
    big = invoke("run", EX / "street.png", "maxpool:2", "--animate", gif, "-q")
    assert big.exit_code == 0 and Image.open(gif).n_frames == 64  # the top-left 16×16 of the 64×64 image
    cropped = invoke("run", EX / "street.png", "maxpool:2", "--animate", gif, "--crop", "20,30,4,6", "--zoom", "2", "-q")
    assert cropped.exit_code == 0 and Image.open(gif).n_frames == 2 * 3
    too_big = invoke("run", EX / "street.png", "maxpool:2", "--animate", gif, "--crop", "0,0,64,64", "-q")
    assert too_big.exit_code == 2 and "--crop 0,0,64,64 is larger than 32×32" in " ".join(too_big.stderr.split())
    assert "--save-maps" in too_big.stderr
    assert invoke("relu", EX / "grid4x4.json", "--crop", "0,0,2,2").exit_code == 2  # --crop without --animate
    assert invoke("relu", EX / "grid4x4.json", "--animate", gif, "-q").exit_code == 1
    assert invoke("pool", "-k", "2", EX / "grid4x4.json", "--animate", tmp_path / "a.png").exit_code == 2


def test_unpool_animation_from_a_piped_max_pool(tmp_path):
    pooled = runner.invoke(app, ["pool", "-k", "2", str(EX / "grid4x4.json"), "--json"]).stdout
    gif = tmp_path / "unpool.gif"
    result = runner.invoke(app, ["unpool", "-k", "2", "-", "--animate", str(gif), "-q"], input=pooled)
    assert result.exit_code == 0, result.output
    assert Image.open(gif).n_frames == 4


def test_preview_draws_half_blocks_in_colour_and_a_character_ramp_in_a_pipe():
    coloured = runner.invoke(app, ["conv", str(EX / "line5x5.json"), "--weight", "gx", "--bias", "0", "--preview"],
                             env={"COLUMNS": "120", "FORCE_COLOR": "1"})  # fmt: skip
    assert coloured.exit_code == 0 and "▀" in coloured.stdout and "\x1b[" in coloured.stdout
    piped = invoke("conv", EX / "line5x5.json", "--weight", "gx", "--bias", "0", "--preview")
    assert piped.exit_code == 0 and "▀" not in piped.stdout and "╭" not in piped.stdout and "@" in piped.stdout


def test_animate_all_draws_the_chain_in_one_gif(tmp_path):
    gif = tmp_path / "chain.gif"
    result = invoke("run", EX / "line5x5.json", "Conv2d(1, 1, 3, weight='gx', bias=False)", "relu", "maxpool:2,stride=1",
                    "--animate", gif, "--animate-all", "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert Image.open(gif).n_frames == 9 + 1 + 4
    clash = invoke("relu", EX / "grid4x4.json", "--animate", gif, "--animate-all", "--animate-stage", "1")
    assert clash.exit_code == 2 and "drop --animate-stage" in clash.stderr


def test_save_maps_folders_have_the_usual_permissions_and_replaced_maps_keep_theirs(tmp_path):
    old_umask = os.umask(0o022)
    try:
        single = invoke("run", EX / "grid4x4.json", "relu", "--save-maps", tmp_path / "one", "-q")
        batch = invoke("relu", EX / "grid4x4.json", EX / "ones4x4.json", "--save-maps", tmp_path / "many", "-q")
        os.chmod(tmp_path / "one" / "01-relu.png", 0o600)
        again = invoke("run", EX / "grid4x4.json", "relu", "--save-maps", tmp_path / "one", "-q")
    finally:
        os.umask(old_umask)
    assert single.exit_code == batch.exit_code == again.exit_code == 0, single.output + batch.output + again.output

    def mode(path):
        return path.stat().st_mode & 0o777

    # a new folder is 0777 less the umask, as mkdir makes it (the staging folder was 0700)
    assert [mode(tmp_path / d) for d in ("one", "many", "many/grid4x4", "many/ones4x4")] == [0o755] * 4
    assert mode(tmp_path / "many" / "ones4x4" / "01-relu.png") == 0o644
    # a map written again keeps the permissions its file had, as every output file does
    assert mode(tmp_path / "one" / "01-relu.png") == 0o600
    assert mode(tmp_path / "one" / "00-input.png") == 0o644
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["00-input.png", "01-relu.png"]
