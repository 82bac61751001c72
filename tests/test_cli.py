import subprocess
import sys

from edge_clipguard.cli import main


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "edge_clipguard.cli", *args], capture_output=True, text=True)


def test_bad_config_path_is_one_line_and_exit_2(capsys):
    assert main(["info", "--config", "missing.json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edge-clipguard: error: missing.json: no such config file") and "\n" not in err


def test_zero_scene_count_is_refused_without_output(tmp_path, vader_dir, capsys):
    assert main(["data", "scenes", "--out", str(tmp_path), "--count", "0", "--vader", str(vader_dir)]) == 2
    assert "--count must be >= 1" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_data_scenes_writes_a_manifest(tmp_path, vader_dir):
    proc = _cli("data", "scenes", "--out", str(tmp_path), "--count", "2", "--split", "val", "--vader", str(vader_dir))
    assert proc.returncode == 0, proc.stderr
    assert len((tmp_path / "val.jsonl").read_text().splitlines()) == 2


def test_info_prints_parameter_counts(capsys):
    assert main(["info", "--config", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "text_tower" in out and "image_tower" in out and "total" in out
