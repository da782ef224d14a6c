"""Hostile files: family YAML, profiles and .npz datasets.

Every case ends in one FuncsearchError line naming the file (and the line, for YAML),
never a traceback, never minutes or gigabytes of work first; a few go through the CLI.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from funcsearch.candidates import load_candidates
from funcsearch.errors import ConfigError, DataError, ExpressionError, FuncsearchError
from funcsearch.families import expand_family, load_family
from funcsearch.properties import load_profile
from funcsearch.proxies.data import MAX_CLASSES, load_npz
from funcsearch.yamlio import MAX_BYTES, MAX_YAML_DEPTH, load_yaml

ROOT = Path(__file__).resolve().parents[1]


def family(*steps: str, base: str = "erf(x)") -> str:
    pipeline = ["pipeline:", *steps] if steps else ["pipeline: []"]
    return "\n".join(["bases:", f"  - {{name: f, expression: {json.dumps(base)}}}", *pipeline]) + "\n"


def refused(call, path: Path, line: int | None = None, kind: type = FuncsearchError,
            contains: str = "") -> FuncsearchError:
    """``call()`` raises ``kind``: one line, naming the file (and line). Hangs are caught by
    each test's pytest-timeout guard, not by a clock asserted here (timed pass/fail tests are
    flaky on a shared machine)."""
    with pytest.raises(FuncsearchError) as caught:
        call()
    error = caught.value
    message = str(error)
    assert isinstance(error, kind), (type(error), message)
    assert "\n" not in message and "Traceback" not in message, message
    prefix = str(path) + (f":{line}: " if line is not None else "")
    assert message.startswith(prefix), (message, prefix)
    assert contains in message, message
    return error


# --------------------------------------------------------------------------- family YAML


YAML_CASES: list[tuple[str, str, int | None, str]] = [
    # (id, file text, line of the error, a part of the message)
    ("nested-flow-500", "bases: " + "[" * 500 + "]" * 500 + "\n", 1, "nested deeper than"),
    ("nested-block-500", "bases:\n" + "".join("  " * i + "- \n" for i in range(1, 500)), 101,
     "nested deeper than"),
    ("nested-mapping-500", "".join("  " * i + f"k{i}:\n" for i in range(500)), 100,
     "nested deeper than"),
    ("value-inf", family("  - {transform: translate, values: [.inf]}"), 4, "non-finite"),
    ("value-minus-inf", family("  - {transform: translate, values: [-.inf]}"), 4, "non-finite"),
    ("value-nan", family("  - {transform: scale_x, values: [.nan]}"), 4, "non-finite"),
    ("value-1e400", family("  - {transform: offset, values: [1e400]}"), 4, "non-finite"),
    ("value-1e300", family("  - {transform: translate, values: [1e300]}"), 4, "larger than"),
    ("value-1.0e+300", family("  - {transform: scale_y, values: [1.0e+300]}"), 4, "larger than"),
    ("value-1e-300", family("  - {transform: translate, values: [1e-300]}"), 4, "too small or too precise"),
    ("value-text-inf", family("  - {transform: translate, values: ['inf']}"), 4, "non-finite"),
    ("value-huge-constant", family("  - {transform: translate, values: ['sin(exp(exp(100)))']}"),
     4, "constant exp(exp(100)) overflows"),
    ("value-exp-overflow", family("  - {transform: clip, values: ['exp(exp(9))']}"), 4, "overflows"),
    ("flat-zone-30", family(*[f"  - {{transform: flat_zone, values: [{k}]}}" for k in range(1, 31)]),
     None, "parts once built"),
    ("ratio-30", family(*["  - {transform: ratio}"] * 30), None, "parts once built"),
    ("ratio-8", family(*["  - {transform: ratio}"] * 8), None, "f|ratio|ratio"),
    ("ratio-5", family(*["  - {transform: ratio}"] * 5), 8, "canonical form would not parse back"),
    ("power-combines", family("  - {transform: scale_y, values: [2]}", base="clip(((x**16)**16)**16, -1, 1)"),
     2, "constant exponent"),
    ("base-huge-constant", family(base="x*sin(exp(exp(20)))"), 2, "constant exp(exp(20)) overflows"),
    ("base-code", family(base="__import__('os').system('true')"), 2, "not allowed"),
    ("merge-scalar", "d: &d 5\nbases:\n  - <<: *d\n    name: f\n    expression: erf(x)\n", 3,
     "merge key"),
    ("duplicate-key", "bases:\n  - name: f\n    name: g\n    expression: erf(x)\n", 3, "duplicate key"),
    ("nul-character", "bases:\n  - name: f\n    expression: erf(x)\x00\n", 3, "unacceptable character"),
    ("python-tag", "bases: !!python/object/apply:os.system ['true']\n", 1, "constructor"),
    ("alias-bomb", "a: &a [" + ",".join(["x"] * 20) + "]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 20) + "]\n" for i in range(5)),
     None, "document too large"),
    ("tab-indent", "bases:\n\t- name: f\n", 2, "cannot start any token"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("text", "line", "contains"), [c[1:] for c in YAML_CASES],
                         ids=[c[0] for c in YAML_CASES])
def test_hostile_family_file(tmp_path: Path, text: str, line: int | None, contains: str) -> None:
    path = tmp_path / "fam.yaml"
    path.write_text(text, encoding="utf-8")
    error = refused(lambda: load_candidates([path]), path, line, contains=contains)
    if line is None:
        assert error.line is not None  # located all the same, at the step or the key
        assert str(error).startswith(f"{path}:{error.line}: ")


@pytest.mark.timeout(120)
def test_eight_ratio_steps_are_refused_naming_the_candidate(tmp_path: Path) -> None:
    path = tmp_path / "fam.yaml"
    path.write_text(family(*["  - {transform: ratio}"] * 8))
    error = refused(lambda: load_candidates([path]), path, contains="(in f|ratio|ratio|ratio")
    assert error.field is not None and error.field.startswith("pipeline[")


@pytest.mark.timeout(60)
def test_a_50_mb_family_file_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.write(b"bases:\n")
        chunk = b"  - {name: f, expression: erf(x)}\n" * 30_000
        while handle.tell() < 50 * 1024 * 1024:
            handle.write(chunk)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    error = refused(lambda: load_candidates([path]), path, kind=ConfigError, contains="limit")
    assert f"larger than the limit of {MAX_BYTES // 1024 // 1024}.0 MiB" in str(error)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100, grown_mb


@pytest.mark.timeout(120)
def test_a_too_large_profile_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_bytes(b"#" * (MAX_BYTES + 1))
    refused(lambda: load_profile(path), path, kind=ConfigError, contains="larger than the limit")


@pytest.mark.timeout(120)
def test_non_utf8_files_report_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("bases:\n  - name: f\n    description: caf\u00e9\n".encode("latin-1"))
    refused(lambda: load_yaml(path), path, line=3, kind=ConfigError, contains="not UTF-8")


@pytest.mark.timeout(120)
def test_nesting_limit_is_a_config_error_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "{b: " * 2000 + "1" + "}" * 2000 + "\n")
    refused(lambda: load_yaml(path), path, line=1, kind=ConfigError,
            contains=f"nested deeper than {MAX_YAML_DEPTH} levels")


@pytest.mark.timeout(120)
def test_merge_keys_are_supported_and_located(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text(
        "x-clip: &clip\n"
        "  transform: clip\n"
        "  values: [1, 2]\n"
        "bases:\n"
        "  - {name: f, expression: erf(x)}\n"
        "pipeline:\n"
        "  - <<: *clip\n"
        "    optional: true\n"
        "  - <<: *clip\n"
        "    values: [3]\n"
    )
    # a key the schema does not know is still refused, at its line: the merge worked
    error = refused(lambda: load_family(path), path, line=1, kind=ConfigError, contains="x-clip")
    assert "extra inputs" in str(error)
    path.write_text(path.read_text().replace("x-clip: &clip", "description: &clip"))
    with pytest.raises(ConfigError):  # description must be text; now a mapping
        load_family(path)
    text = ("bases:\n"
            "  - &base {name: f, expression: erf(x)}\n"
            "  - <<: *base\n"
            "    name: g\n"
            "pipeline:\n"
            "  - &clip {transform: clip, values: [1, 2]}\n"
            "  - <<: *clip\n"
            "    values: [0, 'pi', 1e9]\n")
    path.write_text(text)
    fam = load_family(path)
    assert [b.name for b in fam.bases] == ["f", "g"]
    assert fam.pipeline[1].transform == "clip" and fam.pipeline[1].values == [0, "pi", "1e9"]
    # an error in an overriding value is located at the override's line
    error = refused(lambda: expand_family(fam), path, line=8, kind=ConfigError)
    assert "c > 0" in str(error)


# --------------------------------------------------------------------------- .npz datasets


def npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


IMAGES = np.random.default_rng(0).random((40, 8, 8)).astype(np.float32)
LABELS = np.arange(40) % 4


def with_label(value) -> np.ndarray:
    labels = LABELS.astype(np.uint64 if value >= 2**63 else np.int64)
    labels[0] = value
    return labels


NPZ_CASES = {
    "label-1e9": (dict(images=IMAGES, labels=with_label(10**9)), f"K at most {MAX_CLASSES}"),
    "label-2**62": (dict(images=IMAGES, labels=with_label(2**62)), f"K at most {MAX_CLASSES}"),
    "label-5e6": (dict(images=IMAGES, labels=with_label(5_000_000)), "found label 5000000"),
    "label-2**64-1": (dict(images=IMAGES, labels=with_label(2**64 - 1)), f"K at most {MAX_CLASSES}"),
    "label-negative": (dict(images=IMAGES, labels=with_label(-1)), "0..K-1"),
    "label-float": (dict(images=IMAGES, labels=LABELS.astype(np.float64)), "must be integers"),
    "label-strings": (dict(images=IMAGES, labels=np.array(["cat"] * 40)), "must be integers"),
    "label-bool": (dict(images=IMAGES, labels=np.ones(40, bool)), "must be integers"),
    "label-2d": (dict(images=IMAGES, labels=LABELS.reshape(20, 2)), "1-D"),
    "images-zero-height": (dict(images=np.zeros((40, 0, 8), np.float32), labels=LABELS), "axis of size 0"),
    "images-zero-width-nhwc": (dict(images=np.zeros((40, 8, 0, 3), np.uint8), labels=LABELS),
                               "axis of size 0"),
    "images-empty": (dict(images=np.zeros((0, 8, 8), np.float32), labels=LABELS[:0]), "empty"),
    "split-zero-axis": (dict(x_train=np.zeros((40, 3, 0, 4), np.float32), y_train=LABELS,
                             x_test=IMAGES[:, None], y_test=LABELS), "axis of size 0"),
    "images-strings": (dict(images=np.array([[["ab"] * 8] * 8] * 40), labels=LABELS), "dtype <U2"),
    "images-bool": (dict(images=np.zeros((40, 8, 8), bool), labels=LABELS), "dtype bool"),
    "images-complex": (dict(images=IMAGES.astype(np.complex64), labels=LABELS), "dtype complex64"),
    "images-structured": (dict(images=np.zeros((40, 8, 8), dtype=[("r", "f4")]), labels=LABELS),
                          "integer or float"),
    "images-scalar": (dict(images=np.float32(1), labels=LABELS), "found shape ()"),
    "images-nan": (dict(images=np.full((40, 8, 8), np.nan, np.float32), labels=LABELS), "non-finite"),
    "images-out-of-range": (dict(images=IMAGES * 300, labels=LABELS), "[0, 1]"),
    "no-known-arrays": (dict(a=IMAGES, b=LABELS), "expected arrays"),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("arrays", "contains"), list(NPZ_CASES.values()), ids=list(NPZ_CASES))
def test_hostile_npz(tmp_path: Path, arrays: dict, contains: str) -> None:
    path = npz(tmp_path / "data.npz", **arrays)
    refused(lambda: load_npz(path), path, kind=DataError, contains=contains)


@pytest.mark.timeout(120)
def test_object_arrays_are_refused_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "objects.npz"
    np.savez(path, images=np.array([object()] * 40, dtype=object), labels=LABELS)
    refused(lambda: load_npz(path), path, kind=DataError, contains="Python objects")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04 truncated", b""])
def test_files_that_are_not_npz_archives(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    refused(lambda: load_npz(path), path, kind=DataError, contains="cannot read as a .npz archive")


@pytest.mark.timeout(120)
def test_members_that_are_not_arrays(tmp_path: Path) -> None:
    path = tmp_path / "members.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images.npy", b"garbage bytes, no header")
        archive.writestr("labels.npy", b"\x93NUMPY\x01\x00{'descr': nonsense")
    refused(lambda: load_npz(path), path, kind=DataError, contains="cannot read as a .npz archive")


def bomb(path: Path, shape: tuple[int, ...], dtype: str = "<f4") -> Path:
    """An .npz whose images header claims ``shape``, with only 20 MB of zeros behind it
    (compressing to ~20 KB): what np.load would allocate in full before finding out."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False,
                                                      "shape": shape})
        with archive.open("images.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())  # magic string and header
            for _ in range(20):
                member.write(b"\0" * (1 << 20))
        labels = io.BytesIO()
        np.save(labels, LABELS)
        archive.writestr("labels.npy", labels.getvalue())
    return path


@pytest.mark.timeout(120)
def test_a_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    path = bomb(tmp_path / "bomb.npz", (2_500_000_000,))  # 10 GB of float32
    assert path.stat().st_size < 1_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    refused(lambda: load_npz(path), path, kind=DataError, contains="more than the limit")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100, grown_mb


# --------------------------------------------------------------------------- the CLI


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("funcsearch")
    command = [str(script), *args] if script.exists() else [sys.executable, "-c",
                                                             "from funcsearch.cli import main; main()", *args]
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


CLI_FAMILIES = {
    "ratio-8": (family(*["  - {transform: ratio}"] * 8), "parts once built"),
    "value-nan": (family("  - {transform: translate, values: [.nan]}"), "non-finite"),
    "nested-500": ("bases: " + "[" * 500 + "]" * 500 + "\n", "nested deeper"),
    "huge-constant": (family(base="x*sin(exp(exp(20)))"), "overflows"),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("text", "contains"), list(CLI_FAMILIES.values()), ids=list(CLI_FAMILIES))
def test_cli_candidates_prints_one_error_line(tmp_path: Path, text: str, contains: str) -> None:
    path = tmp_path / "fam.yaml"
    path.write_text(text)
    line = one_error_line(run_cli("candidates", str(path), cwd=tmp_path))
    assert str(path) in line and contains in line, line


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("expression", "contains"), [
    ("x*sin(exp(exp(20)))", "exp(exp(20)) overflows"),
    ("clip(((x**16)**16)**16, -1, 1)", "constant exponent"),
    ("__import__('os').system('true')", "not allowed"),
])
def test_cli_plot_shapes_prints_one_error_line(tmp_path: Path, expression: str, contains: str) -> None:
    result = run_cli("plot", "shapes", expression, "--out", str(tmp_path / "x.png"), cwd=tmp_path)
    line = one_error_line(result)
    assert contains in line, line
    assert not (tmp_path / "x.png").exists()


def test_error_classes() -> None:
    for kind in (ConfigError, DataError, ExpressionError):
        assert issubclass(kind, FuncsearchError)


@pytest.mark.parametrize("value", ["big", None, [1], float("inf"), float("nan"), True, 10**400])
def test_pointwise_norm_refuses_an_alpha_init_that_is_not_a_finite_number(value) -> None:
    from funcsearch.errors import InputError
    from funcsearch.layers import PointwiseNorm

    with pytest.raises(InputError) as caught:
        PointwiseNorm("erf", 4, alpha_init=value)
    message = str(caught.value)
    assert message.startswith("alpha_init: must be a finite number") and "\n" not in message
    assert len(message) < 100
