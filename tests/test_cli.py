import json
import subprocess
import sys

import pytest

from augbench.cli import main

BAD_TRAIN_FLAGS = [
    (["--model", "no_such_net"], "no_such_net"),
    (["--method", "nope"], "--method nope"),
    (["--method", "dlb", "--method-arg", "temperature"], "--method-arg"),
    (["--method", "dlb", "--method-arg", "tau=2"], "accepted: alpha, forward, temperature"),
    (["--method", "dlb", "--method-arg", "temperature=hot"], "temperature"),
    (["--label-noise", "gaussian:0.3"], "--label-noise"),
    (["--label-noise", "sym:1.5"], "--label-noise"),
    (["--val-fraction", "1.5"], "--val-fraction"),
    (["--train-subset", "999999"], "--train-subset"),
    (["--dataset", "imagenet"], "--dataset"),
    (["--dataset", "cifar10", "--data-root", "{tmp}/empty"], "--download"),
    (["--device", "tpu"], "--device"),
    (["--warmup-epochs", "9"], "--warmup-epochs"),
    (["--resume"], "--resume"),
]


@pytest.mark.parametrize("flags,expected", BAD_TRAIN_FLAGS, ids=[" ".join(f) for f, _ in BAD_TRAIN_FLAGS])
def test_bad_train_input_exits_2_and_writes_nothing(tmp_path, capsys, monkeypatch, flags, expected):
    monkeypatch.setenv("AUGBENCH_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "empty").mkdir()
    out = tmp_path / "run"
    flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    code = main(["train", "--dataset", "synthetic", "--epochs", "1", "--out", str(out), *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err
    assert not out.exists()


@pytest.mark.parametrize("flags", [["--epochs", "0"], ["--epochs", "two"], ["--batch-size", "-1"], ["--lr", "x"],
                                   ["--budget", "forever"], ["--schedule", "linear"], ["--frobnicate"]])
def test_bad_flag_values_exit_2(tmp_path, capsys, flags):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "synthetic", "--out", str(tmp_path / "run"), *flags])
    assert exc.value.code == 2
    assert flags[0] in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_out_with_a_different_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--dataset", "synthetic", "--train-subset", "256", "--batch-size", "64", "--epochs", "1",
            "--out", str(out), "--no-progress"]
    assert main(args) == 0
    before = (out / "result.json").read_text()
    assert main([*args[:-3], "--lr", "0.01", "--out", str(out)]) == 2
    assert "lr" in capsys.readouterr().err
    assert (out / "result.json").read_text() == before


def test_cli_end_to_end_in_a_real_process(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "augbench", "train", "--dataset", "synthetic_gray", "--method", "dlb",
           "--method-arg", "temperature=4", "--train-subset", "256", "--batch-size", "64", "--epochs", "1",
           "--out", str(out), "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "result.json").read_text())
    assert record["method_args"]["temperature"] == 4.0 and record["status"] == "finished"
    assert record["command"][:2] == ["augbench", "train"]
    bad = subprocess.run([*cmd[:-3], "--out", str(tmp_path / "bad"), "--model", "nonet"], capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2 and "nonet" in bad.stderr and not (tmp_path / "bad").exists()


def test_listings(capsys):
    assert main(["methods"]) == 0
    listed = capsys.readouterr().out
    assert "dlb" in listed and "ce" in listed
    assert main(["models"]) == 0
    assert "cifar_resnet18" in capsys.readouterr().out
