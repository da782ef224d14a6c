"""Point-wise layers: formula, fast path, factory, conversion of real models."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from funcsearch.errors import ExpressionError, InputError
from funcsearch.expressions import parse_expression
from funcsearch.layers import (
    Derf,
    DyT,
    PointwiseNorm,
    convert_norms,
    fast_pointwise,
    make_norm,
    plain_formula,
    site_of,
)
from funcsearch.layers import fast as fast_module

torch.set_num_threads(1)


def _set(layer: PointwiseNorm, alpha: float, shift, weight, bias) -> PointwiseNorm:
    with torch.no_grad():
        layer.alpha.fill_(alpha)
        if shift is not None:
            layer.shift.copy_(torch.as_tensor(shift, dtype=layer.shift.dtype))
        if weight is not None:
            layer.weight.copy_(torch.tensor(weight))
        if bias is not None:
            layer.bias.copy_(torch.tensor(bias))
    return layer


# --------------------------------------------------------------------------- formula
def test_initial_values_follow_the_paper() -> None:
    layer = PointwiseNorm("erf", 4)
    assert layer.alpha.item() == 0.5 and layer.alpha.shape == ()
    assert layer.shift.item() == 0.0 and layer.shift.shape == ()
    assert torch.equal(layer.weight, torch.ones(4)) and torch.equal(layer.bias, torch.zeros(4))
    assert PointwiseNorm("erf", 4, alpha_init=0.2).alpha.item() == pytest.approx(0.2)


@pytest.mark.parametrize("fn, f, df", [
    ("erf", math.erf, lambda z: 2 / math.sqrt(math.pi) * math.exp(-z * z)),
    ("tanh", math.tanh, lambda z: 1 - math.tanh(z) ** 2),
    ("x/(1 + abs(x))", lambda z: z / (1 + abs(z)), lambda z: 1 / (1 + abs(z)) ** 2),
])
def test_formula_and_gradients_match_a_hand_computation(fn, f, df) -> None:
    alpha, s, gamma, beta = 0.7, 0.3, [2.0, -1.0], [0.5, 0.25]
    layer = _set(PointwiseNorm(fn, 2).double(), alpha, s, gamma, beta)
    rows = [[0.4, -1.2], [2.0, 0.1], [-0.6, 0.9]]
    x = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    weights = torch.tensor([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.25]], dtype=torch.float64)
    (y * weights).sum().backward()
    g_alpha = g_shift = 0.0
    g_gamma, g_beta = [0.0, 0.0], [0.0, 0.0]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            z = alpha * value + s
            assert y[r, c].item() == pytest.approx(gamma[c] * f(z) + beta[c], abs=1e-12)
            upstream = weights[r, c].item()
            dz = upstream * gamma[c] * df(z)
            assert x.grad[r, c].item() == pytest.approx(dz * alpha, abs=1e-12)
            g_alpha += dz * value
            g_shift += dz
            g_gamma[c] += upstream * f(z)
            g_beta[c] += upstream
    assert layer.alpha.grad.item() == pytest.approx(g_alpha, abs=1e-12)
    assert layer.shift.grad.item() == pytest.approx(g_shift, abs=1e-12)
    assert layer.weight.grad.tolist() == pytest.approx(g_gamma, abs=1e-12)
    assert layer.bias.grad.tolist() == pytest.approx(g_beta, abs=1e-12)


def test_vector_shift_is_per_channel_with_per_channel_gradient() -> None:
    layer = _set(PointwiseNorm("erf", 3, shift="vector").double(), 0.5, [0.1, -0.2, 0.3], None, None)
    assert layer.shift.shape == (3,)
    x = torch.tensor([[1.0, 2.0, -1.0], [0.5, 0.0, 0.2]], dtype=torch.float64)
    y = layer(x)
    expected = torch.erf(0.5 * x + torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64))
    assert torch.allclose(y, expected, atol=1e-12)
    y.sum().backward()
    z = 0.5 * x + layer.shift.detach()
    manual = (2 / math.sqrt(math.pi) * torch.exp(-z * z)).sum(0)
    assert torch.allclose(layer.shift.grad, manual, atol=1e-12)


def test_affine_off_has_no_gamma_beta_and_no_shift_means_none() -> None:
    layer = PointwiseNorm("tanh", 5, shift=None, affine=False, alpha_init=2.0)
    assert layer.weight is None and layer.bias is None and layer.shift is None
    assert [name for name, _ in layer.named_parameters()] == ["alpha"]
    x = torch.randn(3, 5)
    assert torch.allclose(layer(x), torch.tanh(2.0 * x), atol=1e-6)
    assert PointwiseNorm("tanh", 5, shift="none").shift is None


def test_bias_false_keeps_gamma_only() -> None:
    layer = PointwiseNorm("erf", 4, bias=False)
    assert layer.weight is not None and layer.bias is None
    x = torch.randn(2, 4)
    assert torch.allclose(layer(x), torch.erf(0.5 * x), atol=1e-6)


def test_derf_and_dyt_are_the_named_layers() -> None:
    derf, dyt = Derf(8), DyT(8)
    assert derf.expression == "erf(x)" and derf.shift is not None
    assert dyt.expression == "tanh(x)" and dyt.shift is None
    x = torch.randn(4, 8)
    assert torch.allclose(dyt(x), torch.tanh(0.5 * x), atol=1e-6)
    assert torch.allclose(derf(x), torch.erf(0.5 * x), atol=1e-6)


def test_printed_layer_says_which_function_it_is() -> None:
    text = repr(make_norm("arcsinhclip", 16, alpha_init=0.8, shift="vector"))
    assert "arcsinhclip" in text and "clip(asinh(x), -1, 1)" in text
    assert "alpha_init=0.8" in text and "shift=vector" in text


def test_input_with_wrong_channel_count_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"trailing dims \(8,\)"):
        Derf(8)(torch.randn(2, 7))


# --------------------------------------------------------------------------- fast path
def _inputs(shift: str | None, affine: bool, dtype=torch.float64, shape=(2, 3, 4)):
    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=dtype, requires_grad=True)
    alpha = torch.tensor(0.8, dtype=dtype, requires_grad=True)
    s = None
    if shift == "scalar":
        s = torch.tensor(0.2, dtype=dtype, requires_grad=True)
    elif shift == "vector":
        s = (0.1 * torch.randn(shape[-1], dtype=dtype)).requires_grad_()
    w = b = None
    if affine:
        w = (1 + 0.3 * torch.randn(shape[-1], dtype=dtype)).requires_grad_()
        b = (0.1 * torch.randn(shape[-1], dtype=dtype)).requires_grad_()
    return x, alpha, s, w, b


CASES = [(kind, shift, affine) for kind in ("erf", "tanh") for shift in ("scalar", "vector", None)
         for affine in (True, False)]


@pytest.mark.parametrize("kind, shift, affine", CASES)
def test_fast_path_equals_plain_formula_values_and_gradients(kind, shift, affine) -> None:
    args = _inputs(shift, affine, dtype=torch.float32, shape=(4, 5, 6))
    tensors = [t for t in args if t is not None]
    fn = torch.erf if kind == "erf" else torch.tanh
    y_fast = fast_pointwise(*args, kind)
    y_plain = plain_formula(fn, *args)
    assert torch.allclose(y_fast, y_plain, atol=1e-6)
    upstream = torch.randn_like(y_fast)
    g_fast = torch.autograd.grad(y_fast, tensors, upstream)
    g_plain = torch.autograd.grad(y_plain, tensors, upstream)
    for a, b in zip(g_fast, g_plain):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind, shift, affine", CASES)
def test_fast_path_passes_gradcheck_and_gradgradcheck(kind, shift, affine) -> None:
    args = _inputs(shift, affine)

    def f(*tensors):
        it = iter(tensors)
        return fast_pointwise(*(next(it) if a is not None else None for a in args), kind)

    tensors = tuple(t for t in args if t is not None)
    assert torch.autograd.gradcheck(f, tensors)
    assert torch.autograd.gradgradcheck(f, tensors)  # backward is differentiable torch ops


@pytest.mark.parametrize("kind", ["erf", "tanh"])
@pytest.mark.parametrize("shift", ["vector", "scalar", None])
@pytest.mark.parametrize("channels", [(5,), (4, 5)])
def test_inplace_and_functional_backwards_agree(kind, shift, channels) -> None:
    """Both functional layouts (row pass for a scalar/no shift, columns first for a vector
    shift) against the eager in-place backward, also with a multi-dim channel shape."""
    torch.manual_seed(0)
    shape = (3, 4, *channels) if len(channels) == 1 else (3, *channels)
    x = torch.randn(*shape, dtype=torch.float64)
    alpha = torch.tensor(0.8, dtype=torch.float64)
    s = {"vector": 0.1 * torch.randn(channels, dtype=torch.float64),
         "scalar": torch.tensor(0.2, dtype=torch.float64), None: None}[shift]
    w = 1 + 0.3 * torch.randn(channels, dtype=torch.float64)
    grad = torch.randn(*shape, dtype=torch.float64)
    need = (True, True, shift is not None, True, True)
    inplace = fast_module._backward_inplace(kind, grad, x, alpha, s, w, True, need)
    functional = fast_module._backward_functional(kind, grad, x, alpha, s, w, True, need)
    for a, c in zip(inplace, functional):
        assert (a is None) == (c is None)
        if a is not None:
            assert a.shape == c.shape and torch.allclose(a, c, atol=1e-12)


@pytest.mark.parametrize("frozen", ["input", "parameters"])
def test_fast_path_gradients_when_only_some_inputs_need_them(frozen) -> None:
    for kind, fn in (("erf", torch.erf), ("tanh", torch.tanh)):
        x, alpha, s, w, b = _inputs("scalar", True, dtype=torch.float32, shape=(4, 5, 6))
        if frozen == "input":
            x.requires_grad_(False)
        else:
            for t in (alpha, s, w, b):
                t.requires_grad_(False)
        wanted = [t for t in (x, alpha, s, w, b) if t.requires_grad]
        upstream = torch.randn(4, 5, 6)
        fast = torch.autograd.grad(fast_pointwise(x, alpha, s, w, b, kind), wanted, upstream)
        plain = torch.autograd.grad(plain_formula(fn, x, alpha, s, w, b), wanted, upstream)
        for a, c in zip(fast, plain):
            assert torch.allclose(a, c, rtol=1e-4, atol=1e-5)


def test_layer_takes_the_fast_path_for_large_inputs_only() -> None:
    layer = Derf(64)
    big = layer(torch.randn(32, 64, 64, requires_grad=True))
    small = layer(torch.randn(2, 3, 64, requires_grad=True))
    assert "FastPointwise" in type(big.grad_fn).__name__
    assert "FastPointwise" not in type(small.grad_fn).__name__


def _dense_grid() -> torch.Tensor:
    """float32 points: a dense grid over [-12, 12] plus both signs of tiny to large values."""
    tiny_to_large = torch.logspace(-30, 1.1, 3001, dtype=torch.float64)
    return torch.cat([torch.linspace(-12, 12, 240001, dtype=torch.float64),
                      tiny_to_large, -tiny_to_large]).float()


def _approximations(z: torch.Tensor) -> tuple[torch.Tensor, ...]:
    gaussian = fast_module.exp2_nonpositive(-(z * z) * fast_module.LOG2_E)
    return (fast_module.erf_rational(z), fast_module.tanh_rational(z),
            fast_module.sech_squared(z), gaussian,
            fast_module.erf_from_gaussian(z, torch.exp(-z * z)))


def _check_approximations(values: tuple[torch.Tensor, ...], z: torch.Tensor) -> None:
    zd = z.double()
    erf, tanh, sech2, gaussian, erf_as = (v.double() for v in values)
    exact_erf, exact_tanh = torch.erf(zd), torch.tanh(zd)
    tiny = (z.abs() < 1e-3) & (z != 0)
    # rational erf/tanh: a few float32 ulp (ulp of 1 is 1.2e-7), relative accuracy near 0
    assert (erf - exact_erf).abs().max() < 4e-7
    assert (tanh - exact_tanh).abs().max() < 4.5e-7
    assert ((erf - exact_erf).abs() / exact_erf.abs())[tiny].max() < 3e-7
    assert ((tanh - exact_tanh).abs() / exact_tanh.abs())[tiny].max() < 3e-7
    assert erf.abs().max() <= 1 + 2.5e-7 and tanh.abs().max() <= 1 + 2.5e-7  # <= 2 ulp over
    # sech^2 keeps its relative accuracy where tanh nears 1
    exact_sech2 = 1 / torch.cosh(zd) ** 2
    near = z.abs() < 9
    assert ((sech2 - exact_sech2).abs() / exact_sech2)[near].max() < 1.5e-6
    # exp(-z^2) from exp2: relative error ~ that of float32 z*z, absolute below 1e-7
    exact_gaussian = torch.exp(-zd * zd)
    assert (gaussian - exact_gaussian).abs().max() < 1e-7
    moderate = z.abs() < 3
    assert ((gaussian - exact_gaussian).abs() / exact_gaussian)[moderate].max() < 1e-6
    assert (erf_as - exact_erf).abs().max() < 1e-6


def test_float32_approximations_are_accurate_eager() -> None:
    z = _dense_grid()
    _check_approximations(_approximations(z), z)


@pytest.mark.slow
def test_float32_approximations_are_accurate_compiled() -> None:
    """The values inductor computes (fused multiply-adds, inline exp2) are the ones used."""
    z = _dense_grid()
    _check_approximations(torch.compile(_approximations)(z), z)


def test_exp2_nonpositive_matches_exp2_and_keeps_nan() -> None:
    t = torch.cat([-torch.linspace(0, 125, 500001), torch.tensor([-0.0, -1e-30])])
    exact = torch.exp2(t.double())
    got = fast_module.exp2_nonpositive(t).double()
    assert ((got - exact).abs() / exact).max() < 1.5e-7
    far = fast_module.exp2_nonpositive(torch.tensor([-130.0, -1e30, -float("inf")]))
    assert (far >= 0).all() and (far <= 1.2e-38).all()
    assert fast_module.exp2_nonpositive(torch.tensor([float("nan")])).isnan().all()
    assert fast_module.erf_rational(torch.tensor([float("nan")])).isnan().all()


def _compiled_layer_case(kind: str, shift: str | None, affine: bool):
    args = _inputs(shift, affine, dtype=torch.float32, shape=(6, 5, 16))
    with torch.no_grad():
        args[0].mul_(3.0)  # reach the flat tails too
    compiled = torch.compile(lambda *a: fast_pointwise(*a, kind), fullgraph=True, dynamic=False)
    return args, compiled


@pytest.mark.slow
@pytest.mark.parametrize("kind, shift, affine", [
    ("erf", "scalar", True), ("erf", None, False), ("erf", "vector", True),
    ("tanh", None, True), ("tanh", "scalar", True)])
def test_compiled_fast_path_matches_exact_formula_and_its_autograd(kind, shift, affine) -> None:
    """float32 under torch.compile (approximations inside) against the exact formula in
    float64 (values) and against autograd of the plain float32 formula (gradients)."""
    args, compiled = _compiled_layer_case(kind, shift, affine)
    tensors = [t for t in args if t is not None]
    fn = torch.erf if kind == "erf" else torch.tanh
    y = compiled(*args)
    exact = plain_formula(fn, *(t.double() if t is not None else None for t in args))
    scale = 1.0 if args[3] is None else float(args[3].abs().max())
    assert (y.double() - exact).abs().max() < 1e-6 * scale
    upstream = torch.randn_like(y)
    got = torch.autograd.grad(y, tensors, upstream)
    want = torch.autograd.grad(plain_formula(fn, *args), tensors, upstream)
    for a, b in zip(got, want):
        assert a.shape == b.shape
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * max(1.0, float(b.abs().max())))


@pytest.mark.slow
def test_compiled_fast_path_saves_only_its_inputs_and_allocates_one_full_tensor_per_pass() -> None:
    """The speed design: the forward writes only y and hands backward nothing computed
    (AOT autograd would save z and f(z) if the two passes shared an fma node); the
    backward allocates only the input gradient at full size."""
    from torch._inductor.utils import run_and_get_code

    args, compiled = _compiled_layer_case("erf", "scalar", True)

    def step() -> None:
        compiled(*args).backward(torch.ones(6, 5, 16))

    _, (forward_code, backward_code) = run_and_get_code(step)
    full = "empty_strided_cpu((6, 5, 16)"
    assert forward_code.count(full) == 1 and backward_code.count(full) == 1
    saved = forward_code.split("return (")[-1].split(")")[0]
    assert "buf" not in saved.split(",", 1)[1]  # after y: the primals only


def test_fast_path_saves_only_inputs() -> None:
    x, alpha, s, w, b = _inputs("scalar", True, dtype=torch.float32)
    y = fast_pointwise(x, alpha, s, w, b, "erf")
    saved = y.grad_fn.saved_tensors
    assert len(saved) == 4 and torch.equal(saved[0], x)
    assert all(t.numel() == 1 or t.shape == (4,) for t in saved[1:])  # alpha, s, gamma


@pytest.mark.slow
@pytest.mark.parametrize("function", ["erf", "x/(1 + abs(x))"])
def test_compile_option_matches_eager_values_and_gradients(function) -> None:
    eager = make_norm(function, 8)
    compiled = make_norm(function, 8, compile=True)
    compiled.load_state_dict(eager.state_dict())
    x = torch.randn(2, 3, 8, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    y, y2 = eager(x), compiled(x2)
    assert compiled.compile_error is None
    assert torch.allclose(y, y2, atol=1e-6)
    y.square().sum().backward()
    y2.square().sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)
    assert torch.allclose(eager.alpha.grad, compiled.alpha.grad, rtol=1e-4)


def test_failed_compilation_falls_back_to_eager_with_a_warning(monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        def formula(*_a):
            raise RuntimeError("no compiler here")
        return formula

    monkeypatch.setattr("funcsearch.layers.pointwise.compiled_formula", broken)
    layer = make_norm("erf", 4, compile=True)
    x = torch.randn(2, 4)
    with pytest.warns(RuntimeWarning, match="no compiler here"):
        y = layer(x)
    assert torch.allclose(y, torch.erf(0.5 * x), atol=1e-6)
    assert "no compiler here" in layer.compile_error


# --------------------------------------------------------------------------- make_norm
@dataclass
class _Candidate:
    name: str
    expression: str


@pytest.mark.parametrize("function, cls, expression", [
    ("layernorm", nn.LayerNorm, None),
    ("rmsnorm", nn.RMSNorm, None),
    ("erf", PointwiseNorm, "erf(x)"),
    ("derf", PointwiseNorm, "erf(x)"),
    ("tanh", PointwiseNorm, "tanh(x)"),
    ("dyt", PointwiseNorm, "tanh(x)"),
    ("isru", PointwiseNorm, "x/sqrt(x**2 + 1)"),
    ("clip(asinh(x), -1, 1)", PointwiseNorm, "clip(asinh(x), -1, 1)"),
    (_Candidate("erf|translate=+2", "erf(x + 2)"), PointwiseNorm, parse_expression("erf(x + 2)").text),
])
def test_make_norm_builds_each_kind(function, cls, expression) -> None:
    layer = make_norm(function, 6, affine=True)
    assert type(layer) is cls
    if cls is PointwiseNorm:
        assert layer.expression == expression
        x = torch.randn(3, 6)
        layer(x).sum().backward()
        assert layer.alpha.grad is not None
    else:
        assert layer.eps == 1e-6


def test_make_norm_keeps_a_candidates_name_and_uses_the_fast_path_for_erf() -> None:
    layer = make_norm(_Candidate("erf|scale=1", "erf(x)"), 4)
    assert layer.fn_name == "erf|scale=1" and layer.function.fast_kind == "erf"
    assert make_norm("erf(x + 2)", 4).function.fast_kind is None


def test_make_norm_accepts_a_python_callable() -> None:
    layer = make_norm(torch.sin, 4, shift=None)
    x = torch.randn(2, 4)
    assert torch.allclose(layer(x), torch.sin(0.5 * x), atol=1e-6)
    assert layer.fn_name == "sin"


def test_make_norm_affine_off_for_every_kind() -> None:
    assert make_norm("layernorm", 4, affine=False).weight is None
    assert make_norm("rmsnorm", 4, affine=False).weight is None
    assert make_norm("erf", 4, affine=False).weight is None


def test_unknown_function_name_is_a_clear_error() -> None:
    with pytest.raises(ExpressionError, match="nosuchfunction"):
        make_norm("nosuchfunction", 8)
    with pytest.raises(InputError, match="shift"):
        make_norm("erf", 8, shift="matrix")
    with pytest.raises(InputError, match="not a point-wise function"):
        PointwiseNorm("layernorm", 8)


# --------------------------------------------------------------------------- conversion
def _encoder(affine: bool = True, norm_first: bool = True) -> nn.TransformerEncoder:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True,
                                       norm_first=norm_first)
    if not affine:
        layer.norm1 = nn.LayerNorm(16, elementwise_affine=False)
    return nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(16), enable_nested_tensor=False)


def test_convert_transformer_encoder_replaces_every_norm_with_site_alphas() -> None:
    model, replaced = convert_norms(_encoder(), "erf",
                                    alpha_init={"attn": 0.3, "mlp": 0.6, "final": 0.9})
    assert len(replaced) == 7
    assert not any(isinstance(m, (nn.LayerNorm, nn.RMSNorm)) for m in model.modules())
    assert sum(isinstance(m, PointwiseNorm) for m in model.modules()) == 7
    by_name = {r.name: r for r in replaced}
    assert by_name["layers.0.norm1"].site == "attn" and by_name["layers.2.norm2"].site == "mlp"
    assert by_name["norm"].site == "final"
    assert model.layers[1].norm1.alpha.item() == pytest.approx(0.3)
    assert model.layers[1].norm2.alpha.item() == pytest.approx(0.6)
    assert model.norm.alpha.item() == pytest.approx(0.9)
    assert all(r.old_type == "LayerNorm" and r.new is by_name[r.name].new for r in replaced)


def test_convert_respects_elementwise_affine_false() -> None:
    model, replaced = convert_norms(_encoder(affine=False), "tanh", shift=None)
    assert model.layers[0].norm1.weight is None and model.layers[0].norm1.shift is None
    assert model.layers[0].norm2.weight is not None


@pytest.mark.parametrize("norm_first", [True, False])
def test_converted_encoder_runs_in_train_and_eval_without_the_layernorm_fast_path(norm_first) -> None:
    model, _ = convert_norms(_encoder(norm_first=norm_first), "erf")
    x = torch.randn(2, 5, 16)
    mask = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    model.train()
    out = model(x, src_key_padding_mask=mask)
    out.sum().backward()
    assert torch.isfinite(out).all() and model.layers[0].norm1.alpha.grad is not None
    model.eval()
    with torch.no_grad():  # the condition under which PyTorch takes its fused fast path
        fast = model(x, src_key_padding_mask=mask)
        plain = model(x)
    slow = model(x, src_key_padding_mask=mask)  # grad enabled: always the python path
    assert torch.allclose(fast, slow.detach(), atol=1e-5)
    assert torch.allclose(fast[0], plain[0], atol=1e-5)
    # a nested-tensor encoder built before conversion is switched to the python path too
    nested, _ = convert_norms(nn.TransformerEncoder(
        nn.TransformerEncoderLayer(16, 2, 32, batch_first=True), 2), "erf")
    assert nested.use_nested_tensor is False


def test_converted_model_differs_from_the_original_only_in_its_norms() -> None:
    original = _encoder()
    converted, _ = convert_norms(_encoder(), "erf")
    before = {k for k in original.state_dict()}
    after = {k for k in converted.state_dict()}
    assert {k.rsplit(".", 1)[0] for k in before ^ after} <= {
        "norm", *(f"layers.{i}.norm{j}" for i in range(3) for j in (1, 2))}


def test_state_dict_round_trips_through_a_fresh_conversion(tmp_path) -> None:
    model, _ = convert_norms(_encoder(), "erf", shift="vector")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    fresh, _ = convert_norms(_encoder(), "erf", shift="vector")
    fresh.load_state_dict(torch.load(path))
    x = torch.randn(2, 5, 16)
    model.eval(), fresh.eval()
    assert torch.equal(model(x), fresh(x))


def test_whole_converted_model_pickles_and_deep_copies(tmp_path) -> None:
    import copy

    model, _ = convert_norms(_encoder(), "isru")
    model.eval()
    x = torch.randn(2, 5, 16)
    path = tmp_path / "whole.pt"
    torch.save(model, path)
    loaded = torch.load(path, weights_only=False)
    assert torch.equal(model(x), loaded(x)) and torch.equal(model(x), copy.deepcopy(model)(x))
    assert loaded.norm.fn_name == "isru"


def test_convert_sites_globs_and_errors() -> None:
    model, replaced = convert_norms(_encoder(), "erf", sites=["final", "layers.0.*"])
    assert sorted(r.name for r in replaced) == ["layers.0.norm1", "layers.0.norm2", "norm"]
    assert isinstance(model.layers[1].norm1, nn.LayerNorm)
    _, replaced = convert_norms(_encoder(), "erf",
                                alpha_init={"layers.1.*": 0.1, "attn": 0.2, "default": 0.7})
    alphas = {r.name: r.alpha_init for r in replaced}
    assert alphas["layers.1.norm1"] == 0.1 and alphas["layers.0.norm1"] == 0.2
    assert alphas["layers.0.norm2"] == 0.7 and alphas["norm"] == 0.7
    with pytest.raises(InputError, match="'atn' matches no norm"):
        convert_norms(_encoder(), "erf", alpha_init={"atn": 0.3})
    with pytest.raises(InputError, match="sites"):
        convert_norms(_encoder(), "erf", sites=["decoder.*"])
    with pytest.raises(ExpressionError):
        convert_norms(_encoder(), "not a function(")


def test_convert_handles_rmsnorm_user_types_decoders_and_a_bare_norm() -> None:
    class MyNorm(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(dim))

        def forward(self, x):
            return x * self.weight

    model = nn.Sequential(nn.Linear(4, 4), nn.RMSNorm(4), MyNorm(4))
    model, replaced = convert_norms(model, "tanh", extra_types=(MyNorm,))
    assert [r.old_type for r in replaced] == ["RMSNorm", "MyNorm"]
    assert model(torch.randn(2, 4)).shape == (2, 4)
    decoder = nn.TransformerDecoderLayer(8, 2, 16, batch_first=True)
    decoder, replaced = convert_norms(decoder, "erf", alpha_init={"attn": 0.2, "mlp": 0.4})
    assert {r.name: r.site for r in replaced} == {"norm1": "attn", "norm2": "attn", "norm3": "mlp"}
    assert decoder(torch.randn(1, 3, 8), torch.randn(1, 4, 8)).shape == (1, 3, 8)
    new, replaced = convert_norms(nn.LayerNorm(6), "erf")
    assert isinstance(new, PointwiseNorm) and replaced[0].name == ""


def test_convert_to_rmsnorm_keeps_eps_and_mode() -> None:
    model = _encoder().eval()
    model, replaced = convert_norms(model, "rmsnorm")
    assert all(isinstance(r.new, nn.RMSNorm) and r.alpha_init is None for r in replaced)
    assert model.norm.eps == 1e-5 and not model.norm.training


def test_site_recognition_rules() -> None:
    assert site_of("blocks.3.norm_attn", None) == "attn"
    assert site_of("blocks.3.norm_mlp", None) == "mlp"
    assert site_of("final_layer.norm_final", None) == "final"
    assert site_of("h.0.ln_1", None) == "attn" and site_of("ln_f", None) == "final"
    assert site_of("encoder.norm", None) == "final"
    assert site_of("blocks.0.q_norm", None) == "other"


def test_convert_the_projects_vit_proxy() -> None:
    vit = pytest.importorskip("funcsearch.proxies.vit")
    config = vit.ViTConfig(dim=16, depth=2, heads=2)
    model = vit.ViT(config, 1, (8, 8), 10, lambda dim, site, affine=True: make_norm(
        "layernorm", dim, affine=affine))
    model, replaced = convert_norms(model, "erf", alpha_init={"attn": 0.3, "mlp": 0.4, "final": 0.5})
    assert [(r.name, r.site) for r in replaced] == [
        ("blocks.0.norm_attn", "attn"), ("blocks.0.norm_mlp", "mlp"),
        ("blocks.1.norm_attn", "attn"), ("blocks.1.norm_mlp", "mlp"), ("norm_final", "final")]
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_convert_the_projects_dit_proxy_keeps_affine_off() -> None:
    dit = pytest.importorskip("funcsearch.proxies.dit")
    config = dit.DiTConfig(dim=16, depth=2, heads=2)
    model = dit.DiT(config, 1, (8, 8), 10, lambda dim, site, affine=True: make_norm(
        "layernorm", dim, affine=affine))
    model, replaced = convert_norms(model, "erf")
    assert [(r.name, r.site) for r in replaced] == [
        ("blocks.0.norm_attn", "attn"), ("blocks.0.norm_mlp", "mlp"),
        ("blocks.1.norm_attn", "attn"), ("blocks.1.norm_mlp", "mlp"),
        ("final_layer.norm_final", "final")]
    assert all(r.new.weight is None and r.new.bias is None for r in replaced)
    images = torch.randn(2, 1, 8, 8)
    assert model(images, torch.tensor([3, 500]), torch.tensor([1, 7])).shape == images.shape


def test_import_funcsearch_does_not_import_ray_and_exports_the_layers() -> None:
    code = ("import sys, funcsearch; assert 'ray' not in sys.modules;"
            "from funcsearch import make_norm, convert_norms, PointwiseNorm, Derf, DyT")
    subprocess.run([sys.executable, "-c", code], check=True)
