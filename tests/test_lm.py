"""The character-level GPT proxy (``lm``): offline training on the installed Python's text,
determinism, bad text files, GPT-2 norm-site names, causality.

Every run here uses the proxy's smoke recipe (about a second), never the defaults.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from funcsearch.errors import DataError
from funcsearch.proxies.lm import GPT, PROXY, LMConfig, window_starts
from funcsearch.proxies.registry import get_proxy
from funcsearch.proxies.text import MIN_SPLIT_CHARS, VAL_FRACTION, load_default_text, load_text
from funcsearch.proxies.trial import FunctionSpec, TrialSpec, norm_factory, run_trial

ERF = FunctionSpec(name="erf", expression="erf(x)")
SMOKE = dict(PROXY.smoke)


def _trial(seed: int = 0, data: str | None = None, function: FunctionSpec = ERF):
    return run_trial(TrialSpec(proxy="lm", function=function, seed=seed, overrides=SMOKE, data=data))


def _prose(chars: int) -> str:
    line = "the quick brown fox jumps over the lazy dog while a cat naps in the sun\n"
    return (line * (chars // len(line) + 1))[:chars]


def test_the_proxy_is_registered_with_its_vocabulary() -> None:
    proxy = get_proxy("lm")
    assert proxy is PROXY
    assert proxy.primary_metric == proxy.halving_metric == "val_bpc"
    assert not proxy.higher_is_better
    assert {m.name: m.unit for m in proxy.metrics} == {
        "val_bpc": "bits/char", "train_loss": "nats", "train_eval_loss": "bits/char"}
    config = LMConfig()
    assert (config.beta1, config.beta2, config.weight_decay, config.dropout) == (0.9, 0.95, 0.1, 0.0)


def test_the_default_text_is_the_shipped_copy_whatever_python_runs() -> None:
    # CPython 3.11.7's pydoc_data/topics.py, shipped gzipped: the committed lm studies saw it
    text = load_default_text()
    assert text.fingerprint == "text-pydoc-topics-fd0cfc23823c35b6"
    assert (len(text.train) + len(text.val), text.vocab_size) == (755_864, 103)
    assert text.source.endswith("pydoc_topics_py3.11.7.txt.gz") and "pydoc_data" not in text.source


def test_a_smoke_trial_trains_offline_on_the_shipped_text() -> None:
    result = _trial()
    assert result.status == "ok", result.message
    vocab = load_default_text().vocab_size
    assert result.details["vocab_size"] == vocab
    bpc = result.metrics["val_bpc"]
    assert math.isfinite(bpc) and bpc < math.log2(vocab)  # better than a uniform guess
    assert len(result.curve) == SMOKE["epochs"] and all("val_bpc" in e for e in result.curve)
    assert result.details["steps"] == SMOKE["epochs"] * SMOKE["steps_per_epoch"]
    assert math.isfinite(result.metrics["train_eval_loss"])
    assert result.details["dataset"] == load_default_text().fingerprint


def test_same_seed_gives_the_same_numbers_and_another_seed_does_not() -> None:
    first, again, other = _trial(seed=3), _trial(seed=3), _trial(seed=4)
    assert first.metrics == again.metrics and first.curve == again.curve
    assert first.metrics["val_bpc"] != other.metrics["val_bpc"]


def test_the_default_text_is_cached_and_split_by_position() -> None:
    data = load_text(None)
    assert load_text(None) is data  # read and encoded once per process
    total = len(data.train) + len(data.val)
    assert len(data.val) == math.ceil(total * VAL_FRACTION)
    assert data.vocab == "".join(sorted(set(data.vocab)))
    text = gzip.decompress(Path(data.source).read_bytes()).decode("utf-8")
    assert data.decode(data.val[-50:]) == text[-50:]


def test_a_local_text_file_and_a_folder_of_txt_files_load(tmp_path: Path) -> None:
    single = tmp_path / "corpus.md"
    single.write_text(_prose(4000), encoding="utf-8")
    data = load_text(str(single))
    assert len(data.train) + len(data.val) == 4000 and data.vocab_size < 30
    folder = tmp_path / "books"
    folder.mkdir()
    (folder / "b.txt").write_text("second " * 300, encoding="utf-8")
    (folder / "a.txt").write_text("first " * 300, encoding="utf-8")
    (folder / "notes.rst").write_text("ignored", encoding="utf-8")
    both = load_text(str(folder))
    assert both.decode(both.train[:6]) == "first "  # sorted by name, .txt only
    assert both.fingerprint != data.fingerprint
    result = _trial(data=str(single))
    assert result.status == "ok" and result.details["dataset"] == data.fingerprint


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00", "not UTF-8"),
    ("text\x00with a NUL".encode() * 200, "binary"),
    (b"far too short for a window", "too short"),
])
def test_a_bad_text_file_is_a_data_error_naming_the_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as error:
        load_text(str(path))
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_missing_paths_and_empty_folders_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_text(str(tmp_path / "nowhere.txt"))
    with pytest.raises(DataError, match="no .txt files") as error:
        load_text(str(tmp_path))
    assert str(tmp_path) in str(error.value)


def test_a_context_longer_than_the_validation_split_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "small.txt"
    path.write_text(_prose(math.ceil(MIN_SPLIT_CHARS / VAL_FRACTION) + 10), encoding="utf-8")
    load_text(str(path))  # long enough for the default context
    spec = TrialSpec(proxy="lm", function=ERF, seed=0, data=str(path),
                     overrides={**SMOKE, "context": 1000})
    with pytest.raises(DataError, match="fewer than one window") as error:
        run_trial(spec)
    assert str(path) in str(error.value)


def _recording_factory(sites: list[str]):
    base = norm_factory(ERF, LMConfig())

    def norm(dim: int, site: str, affine: bool = True) -> nn.Module:
        sites.append(site)
        return base(dim, site, affine)

    return norm


def test_norm_sites_carry_gpt2_names_and_all_come_from_the_factory() -> None:
    sites: list[str] = []
    config = LMConfig(depth=3, dim=32, heads=4, context=16)
    model = GPT(config, 50, _recording_factory(sites))
    assert sites == ["attn", "mlp"] * 3 + ["final"]
    norms = {name for name, module in model.named_modules() if type(module).__name__ == "PointwiseNorm"}
    assert norms == {f"h.{i}.ln_{j}" for i in range(3) for j in (1, 2)} | {"ln_f"}
    assert not any(isinstance(m, (nn.LayerNorm, nn.RMSNorm)) for m in model.modules())
    assert model.lm_head.weight is model.wte.weight  # tied head, as nanoGPT


def test_logits_are_causal_a_future_token_changes_no_earlier_logit() -> None:
    torch.manual_seed(0)
    config = LMConfig(depth=2, dim=32, heads=4, context=24, init_std=0.2)
    model = GPT(config, 40, norm_factory(ERF, config)).eval()
    ids = torch.randint(0, 40, (3, 24))
    changed = ids.clone()
    changed[:, 15] = (ids[:, 15] + 7) % 40
    with torch.no_grad():
        before, after = model(ids), model(changed)
    assert torch.equal(before[:, :15], after[:, :15])
    assert not torch.allclose(before[:, 15:], after[:, 15:])


def test_evaluation_windows_are_evenly_spaced_and_fixed() -> None:
    starts = window_starts(1000, 64, 5)
    assert starts.tolist() == [0, 234, 468, 701, 935] and starts[-1] + 64 + 1 == 1000
    assert window_starts(65, 64, 10).tolist() == [0]
