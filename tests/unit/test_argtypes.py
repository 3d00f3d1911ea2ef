import argparse

import pytest

from reasoner.argtypes import fraction, non_negative_int, positive_int


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("7", 7), ("+3", 3)])
def test_positive_int_accepts(text, value):
    assert positive_int("-n")(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "-n must be >= 1, got 0"),
        ("-2", "-n must be >= 1, got -2"),
        ("2.5", "-n must be an integer, got '2.5'"),
    ],
)
def test_positive_int_rejects_naming_flag_and_value(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        positive_int("-n")(text)


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("3", 3)])
def test_non_negative_int_accepts_zero(text, value):
    assert non_negative_int("--workers")(text) == value


def test_non_negative_int_rejects_negative():
    with pytest.raises(argparse.ArgumentTypeError, match="--workers must be >= 0, got -1"):
        non_negative_int("--workers")("-1")


@pytest.mark.parametrize(("text", "value"), [("0", 0.0), ("1", 1.0), ("0.25", 0.25), ("1e-1", 0.1)])
def test_fraction_accepts(text, value):
    assert fraction("--keep")(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1.5", r"--keep must be in \[0, 1\], got 1.5"),
        ("-0.1", r"--keep must be in \[0, 1\], got -0.1"),
        ("nan", r"--keep must be in \[0, 1\], got nan"),
        ("half", r"--keep must be a number in \[0, 1\], got 'half'"),
    ],
)
def test_fraction_rejects_naming_flag_and_value(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        fraction("--keep")(text)


def test_cli_reports_bad_flag_value(capsys):
    from reasoner.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["decode", "What is 1+1?", "-n", "0"])
    assert exc.value.code == 2
    assert "-n must be >= 1, got 0" in capsys.readouterr().err
