"""Property-based fuzzing of every parser that reads user input (hypothesis).

Each parser must end in a result or in our own one-line ValueError, never in another exception. CI
runs FLOWLAB_FUZZ_EXAMPLES examples per parser (default 40, a few seconds each); ``scripts/fuzz.sh``
runs many more and writes how many inputs were tried (FLOWLAB_FUZZ_REPORT).
"""

from __future__ import annotations

import atexit
import io
import json
import os
import struct
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dashboard.model.view import parse_activations, parse_layer_sizes
from dashboard.playground.data import parse_points_csv
from dashboard.services.uploads import read_checkpoint_bytes
from flows import cli, limits
from flows.data.idx import parse_idx
from flows.training import TrainConfig, runs
from flows.training.flags import parse_widths

from .conftest import train_in_folder

EXAMPLES = int(os.environ.get("FLOWLAB_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
)
TRIED: Counter[str] = Counter()


@atexit.register
def _report() -> None:
    path = os.environ.get("FLOWLAB_FUZZ_REPORT")
    if path and TRIED:
        Path(path).write_text(json.dumps(dict(TRIED), indent=2) + "\n")


def ends_cleanly(name: str, parse, *args) -> None:
    """Calls the parser: a result or a ValueError whose message is one line; anything else fails."""
    TRIED[name] += 1
    try:
        parse(*args)
    except ValueError as error:
        message = str(error)
        assert message and "\n" not in message and "Traceback" not in message, message


# --- IDX files ----------------------------------------------------------------------------------------


def _idx_header(type_code: int, shape: list[int]) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


idx_bytes = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda code, shape, body: _idx_header(code, shape) + body,
        st.sampled_from([0x08, 0x08, 0x09, 0x0D]),
        st.lists(st.integers(0, 12), min_size=0, max_size=4),
        st.binary(max_size=200),
    ),
    st.builds(  # a header that promises a huge array
        lambda shape, body: _idx_header(0x08, shape) + body,
        st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3),
        st.binary(max_size=16),
    ),
)


@FUZZ
@given(idx_bytes, st.sampled_from([None, [None, 28, 28], [None]]))
def test_idx_reader(data: bytes, expected: list | None) -> None:
    ends_cleanly("IDX reader", parse_idx, data, "fuzz.idx", expected)


# --- checkpoints -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    config = TrainConfig(dataset="moons", hidden=[4], blocks=1, batch_size=8, steps=2, toy_points=16)
    run = runs.create_run(tmp_path_factory.mktemp("fuzz"), config, name="source")
    train_in_folder(config, run)
    return runs.checkpoint_path(run).read_bytes()


plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(data=st.data())
def test_checkpoint_importer(checkpoint: bytes, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["bytes", "flipped", "cut", "fields"]))
    if kind == "bytes":
        blob = data.draw(st.binary(max_size=256))
    elif kind == "flipped":  # a real checkpoint with a few bytes changed
        blob = bytearray(checkpoint)
        for _ in range(data.draw(st.integers(1, 8))):
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
        blob = bytes(blob)
    elif kind == "cut":
        blob = checkpoint[: data.draw(st.integers(0, len(checkpoint)))]
    else:  # a real checkpoint whose fields are replaced by arbitrary plain values
        state = torch.load(io.BytesIO(checkpoint), weights_only=True)
        for key in data.draw(st.lists(st.sampled_from([*state, "extra"]), min_size=1, max_size=3)):
            state[key] = data.draw(plain_values)
        config = dict(state["config"]) if isinstance(state.get("config"), dict) else None
        if config and data.draw(st.booleans()):
            config[data.draw(st.sampled_from(sorted(config)))] = data.draw(plain_values)
            state["config"] = config
        buffer = io.BytesIO()
        torch.save(state, buffer)
        blob = buffer.getvalue()
    ends_cleanly("checkpoint importer", read_checkpoint_bytes, blob)


# --- text fields -----------------------------------------------------------------------------------------

number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**400), 10**400).map(str),
    st.text(alphabet="0123456789.eE+-naifINF", max_size=12),
)
csv_text = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.tuples(number_text, number_text, st.sampled_from([",", ";", "\t", " ", ", "])),
        min_size=0,
        max_size=40,
    ).map(lambda rows: "x,y\n" + "\n".join(f"{a}{sep}{b}" for a, b, sep in rows)),
)


@FUZZ
@given(csv_text, st.sampled_from(["utf-8", "latin-1", "utf-16"]))
def test_playground_csv_parser(text: str, encoding: str) -> None:
    ends_cleanly("playground CSV parser", parse_points_csv, text.encode(encoding, errors="replace"))


sizes_text = st.one_of(
    st.text(max_size=40),
    st.lists(st.integers(-5, 10**12).map(str) | st.text(max_size=4), max_size=6).map(", ".join),
)


@FUZZ
@given(sizes_text, st.text(max_size=40))
def test_model_page_mlp_spec(sizes: str, activations: str) -> None:
    def parse(sizes_text: str, activations_text: str) -> None:
        layers = parse_layer_sizes(sizes_text)
        parse_activations(activations_text, len(layers) - 1)

    ends_cleanly("Model page MLP spec", parse, sizes, activations)


@FUZZ
@given(sizes_text)
@example("9223372036854775808")  # 2**63: found by fuzzing (torch's TypeError)
def test_hidden_sizes_field(text: str) -> None:
    def parse(text: str) -> None:
        hidden = parse_widths(text)
        config = TrainConfig(dataset="moons", hidden=hidden, toy_points=100).validate()
        limits.check_fits(limits.estimate_training_memory(lambda: _mlp(config.hidden), copies=1))

    ends_cleanly("hidden-sizes field", parse, text)


def _mlp(hidden: list[int]) -> torch.nn.Module:
    from flows import MLP

    return MLP([1, *hidden, 1], ["relu"] * len(hidden) + [None])


# --- command-line flags ------------------------------------------------------------------------------------

FLAGS = ["--model", "--dataset", "--blocks", "--hidden", "--lr", "--steps", "--batch-size", "--device"]
FLAGS += ["--holdout", "--toy-points", "--toy-noise", "--split", "--seed", "--threads", "--run-name"]
FLAGS += ["--eval-every", "--grad-clip", "--adam-beta2", "--schedule", "--amp", "--nonsense", "--resume"]
flag_value = st.one_of(number_text, st.text(max_size=10), st.sampled_from(["moons", "nice", "cpu", "-1"]))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(FLAGS), flag_value), max_size=5))
@example([("--resume", "\n")])  # found by fuzzing: a two-line message
@example([("--resume", "9" * 300)])  # found by fuzzing: OSError, file name too long
def test_cli_flags(pairs: list[tuple[str, str]]) -> None:
    argv = ["--dataset", "moons"] + [part for pair in pairs for part in pair]

    def parse(argv: list[str]) -> None:
        """What main.py does with the flags before any work: its errors are printed through one_line."""
        try:
            cli.make_config(argv)
        except SystemExit as exit_:  # argparse's own one-line usage error
            if exit_.code != cli.EXIT_USAGE:
                raise
        except (ValueError, OSError) as error:  # e.g. --resume of a folder that is not a run
            raise ValueError(cli.one_line(str(error))) from None

    ends_cleanly("command-line flags", parse, argv)
