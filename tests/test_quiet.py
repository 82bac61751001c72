"""Commands print only their own lines; -v lets third-party warnings, logs and prints through."""

import logging
import subprocess
import sys
import warnings

import pytest

from edge_clipguard.cli import build_parser
from edge_clipguard.quiet import set_verbose, third_party_noise


@pytest.fixture()
def quiet_mode():
    set_verbose(False)
    yield
    set_verbose(False)


def test_named_warning_is_dropped_and_others_still_show(quiet_mode):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with third_party_noise(messages=("noisy",)):
            warnings.warn("noisy library chatter", UserWarning, stacklevel=1)
            warnings.warn("a real problem", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a real problem"]


def test_logger_is_silenced_only_inside_the_block(quiet_mode, caplog):
    logger = logging.getLogger("some.library")
    with caplog.at_level(logging.WARNING, logger="some.library"):
        with third_party_noise(loggers=("some.library",)):
            logger.warning("inside")
        logger.warning("outside")
    assert [r.message for r in caplog.records] == ["outside"]


def test_prints_inside_the_block_are_dropped(quiet_mode, capsys):
    with third_party_noise(stdout=True):
        print("Inserted 411 quantizers")
    print("ours")
    assert capsys.readouterr().out == "ours\n"


def test_verbose_lets_everything_through(quiet_mode, capsys):
    set_verbose(True)
    with third_party_noise(messages=("",), stdout=True), pytest.warns(UserWarning, match="chatter"):
        print("Inserted 411 quantizers")
        warnings.warn("chatter", UserWarning, stacklevel=1)
    assert "Inserted" in capsys.readouterr().out


VERBOSE_ARGVS = [["-v", "info"], ["info", "-v"], ["data", "scenes", "--out", "x", "--count", "1", "-v"],
                 ["-v", "profile", "B"], ["profile", "B", "--verbose"]]


@pytest.mark.parametrize("argv", VERBOSE_ARGVS, ids=str)
def test_verbose_flag_works_before_or_after_the_command(argv):
    assert build_parser().parse_args(argv).verbose is True


@pytest.mark.parametrize("argv", [["info"], ["profile", "B"]])
def test_without_the_flag_commands_are_quiet(argv):
    assert build_parser().parse_args(argv).verbose is False


QUANTIZE = """
import torch
from edge_clipguard.config import load_config
from edge_clipguard.model import build_model
from edge_clipguard.model.clipguard import example_inputs
from edge_clipguard.quiet import set_verbose
from edge_clipguard.train.quantize import quantize_int8
set_verbose({verbose})
model = build_model(load_config("tiny"), pretrained=False)
quantize_int8(model, lambda m: m(*example_inputs(m.cfg, batch=2)))
"""


def _quantize_output(verbose: bool) -> str:
    proc = subprocess.run([sys.executable, "-c", QUANTIZE.format(verbose=verbose)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def test_modelopt_import_and_quantize_print_nothing_by_default():
    assert _quantize_output(verbose=False) == ""


def test_modelopt_noise_shows_with_verbose():
    assert "Inserted" in _quantize_output(verbose=True)
