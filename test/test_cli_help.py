"""``seem-ros COMMAND --help``: every option says what it does and what it is by default."""

from __future__ import annotations

import argparse

import pytest

from seem_ros.cli import HelpFormatter, build_parser

# node and convert belong to other modules' owners; bag's --config/--model/--param/
# --allow-untrained come from the shared commands/_ros_args.py
COMMANDS = (
    "segment",
    "demo",
    "bag",
    "eval",
    "train",
    "export",
    "bench",
    "build-engine",
    "release",
    "label",
    "distill",
)
SHARED_ROS_OPTIONS = {"config", "model", "param", "allow_untrained"}


def subcommand(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[name]


def options(name: str) -> list[argparse.Action]:
    actions = [a for a in subcommand(name)._actions if not isinstance(a, argparse._HelpAction)]
    if name == "bag":
        actions = [a for a in actions if a.dest not in SHARED_ROS_OPTIONS]
    return actions


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help_text_and_shows_its_default(name):
    formatter = HelpFormatter(prog=name)
    for action in options(name):
        assert action.help, f"seem-ros {name} {action.option_strings or action.dest}: no help"
        is_switch = action.nargs == 0  # store_true and friends: off unless given
        if not action.option_strings or action.required or is_switch:
            continue
        shown = formatter._get_help_string(action) or ""
        assert "default" in shown, f"seem-ros {name} {action.option_strings}: no default shown"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("segment", "(default: 0.5)"),
        ("segment", "(default: instance)"),
        ("segment", "(default: cpu)"),
        ("eval", "(default: test)"),
        ("build-engine", "(default: fp16)"),
        ("release", "(default: test)"),
    ],
)
def test_the_rendered_help_shows_defaults(name, expected, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([name, "--help"])
    assert expected in " ".join(capsys.readouterr().out.split())


def test_no_default_is_shown_twice_or_as_none(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit):
            build_parser().parse_args([name, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "(default: None)" not in text and "(default: )" not in text, name
        assert "(default: [])" not in text, name


def test_segment_takes_several_images_and_a_device():
    args = build_parser().parse_args(["segment", "a.png", "b.png", "frames/", "--out", "o"])
    assert [str(p) for p in args.images] == ["a.png", "b.png", "frames"]
    assert args.device == "cpu"


@pytest.mark.parametrize(
    "arguments",
    [
        ["distill", "--shards", "s", "--out", "o.safetensors", "--eval-every", "0"],
        ["distill", "--shards", "s", "--out", "o.safetensors", "--steps", "-5"],
        ["distill", "--shards", "s", "--out", "o.safetensors", "--warmup-steps", "-1"],
        ["distill", "--shards", "s", "--out", "o.safetensors", "--batch", "two"],
        ["label", "--teacher", "t", "--frames", "f", "--out", "o", "--stride", "0"],
    ],
)
def test_counts_that_cannot_work_are_usage_errors_naming_the_option(arguments, capsys):
    """A zero interval used to divide by zero only once training had started."""
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(arguments)
    assert exit_info.value.code == 2
    option = arguments[-2]  # each case ends with the bad option and its value
    assert f"argument {option}" in capsys.readouterr().err


def test_distill_accepts_a_warm_up_of_zero():
    arguments = ["distill", "--shards", "s", "--out", "o.safetensors", "--warmup-steps", "0"]
    assert build_parser().parse_args(arguments).warmup_steps == 0
