import pytest

from edge_clipguard.cli import main


@pytest.mark.parametrize(("flag", "value", "least"), [("--steps", "0", 1), ("--qat-steps", "-1", 0),
                                                       ("--test-scenes", "0", 1), ("--batch-size", "0", 1)])
def test_demo_refuses_a_count_below_its_minimum_before_writing_anything(tmp_path, capsys, flag, value, least):
    work = tmp_path / "demo"
    assert main(["demo", "--work", str(work), flag, value]) == 2
    assert f"demo {flag}: must be at least {least}, got {value}" in capsys.readouterr().err
    assert not work.exists()
