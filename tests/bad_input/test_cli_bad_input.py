"""Bad-input matrix, the command line (issue 16, items 10-12): every command ends with one line saying what
went wrong and exit status 2 (``TINCT_DEBUG=1`` shows the traceback); Ctrl-C says what each command kept."""

from __future__ import annotations

import importlib

import pytest

cli = importlib.import_module("tinct.cli.main")  # the module (tinct.cli.main is also its main function)


def _fail_with(monkeypatch, exc: BaseException, command: str = "_cmd_info") -> None:
    def boom(*_args, **_kwargs):
        raise exc

    monkeypatch.setattr(cli, command, boom)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ValueError("bad fold count"), "tinct info: error: ValueError: bad fold count"),
        (RuntimeError("Lightning says\n  something\n  long"), "RuntimeError: Lightning says something long"),
        (
            PermissionError(13, "Permission denied", "/out/x.png"),
            "tinct info: error: /out/x.png: permission denied",
        ),
        (NotADirectoryError(20, "Not a directory", "/a/file/b"), "/a/file/b: not a directory"),
        (KeyError("model"), "KeyError: 'model'"),
    ],
)
def test_any_exception_ends_in_one_line_and_exit_2(monkeypatch, capsys, exc, expected) -> None:
    monkeypatch.delenv("TINCT_DEBUG", raising=False)
    _fail_with(monkeypatch, exc)
    assert cli.main(["info"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    first, *rest = err.strip().splitlines()
    assert first == expected or first.endswith(expected)
    assert rest == ["  (set TINCT_DEBUG=1 to see the traceback)"]


def test_tinct_errors_need_no_debug_hint(monkeypatch, capsys) -> None:
    from tinct.core.exceptions import DataError

    _fail_with(monkeypatch, DataError("x.png: cannot decode image"))
    assert cli.main(["info"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["tinct info: error: x.png: cannot decode image"]


def test_tinct_debug_shows_the_traceback(monkeypatch) -> None:
    monkeypatch.setenv("TINCT_DEBUG", "1")
    _fail_with(monkeypatch, ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        cli.main(["info"])


@pytest.mark.parametrize(
    ("argv", "command", "kept", "not_said"),
    [
        (["colorize", "a.jpg", "--out", "o"], "colorize", "listed in o/colorize.csv", "--resume"),
        (["predict", "RUN", "a.png"], "predict", "predictions.csv", "--resume"),
        (["train", "--resume", "runs/r"], "train", "finished epochs are kept in runs/r", "colorize.csv"),
        (["sweep", "s.yaml"], "sweep", "run the same command again to resume", "--resume"),
        (["data", "synth-constancy", "--out", "d"], "data", "written so far are kept", "--resume"),
    ],
)
def test_ctrl_c_says_what_each_command_kept(monkeypatch, capsys, argv, command, kept, not_said) -> None:
    for name in ("_cmd_train", "_cmd_predict"):
        _fail_with(monkeypatch, KeyboardInterrupt(), name)
    import tinct.cli.colorization as colorization
    import tinct.cli.constancy as constancy
    import tinct.cli.experiments as experiments

    for module in (colorization, constancy, experiments):
        monkeypatch.setattr(module, "run", lambda _args: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert cli.main(argv) == 130
    err = capsys.readouterr().err
    assert err.startswith(f"tinct {command}: interrupted; ")
    assert kept in err and not_said not in err


def test_lightning_exit_on_ctrl_c_in_training_is_reported_as_an_interrupt(monkeypatch, capsys) -> None:
    # Lightning ends an interrupted fit with sys.exit(1) after its shutdown: tinct says what was kept.
    monkeypatch.setattr(cli, "_train", lambda _args: (_ for _ in ()).throw(SystemExit(1)))
    assert cli.main(["train", "--resume", "runs/r"]) == 130
    assert "finished epochs are kept in runs/r" in capsys.readouterr().err


def test_broken_config_file_is_named(tmp_path, capsys) -> None:
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("task: illuminant\nmodel: [unclosed\n")
    assert cli.main(["config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(cfg) in err[0]
