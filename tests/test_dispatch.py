"""Device dispatch: every dispatched layer gives the same outputs and gradients on its CPU and its GPU formulation.

The GPU formulation is plain PyTorch, so `force_path("cuda")` runs it on CPU tensors here. Each test first checks
that the two paths really run different code (their autograd graphs differ), then compares them in fp32.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarks.official_layout import randomize_
from uv2.models import ModelConfig, build_model
from uv2.models.blocks import CrossAttention, DepthwiseConv3d, DepthwiseTemporalConv, depthwise_weight_grad
from uv2.models.dispatch import PATHS, force_path, forced_path, path_for, set_path


def graph_ops(tensor: torch.Tensor) -> set[str]:
    """Names of every autograd node behind `tensor`."""
    seen, names, stack = set(), set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return names


def run_both_paths(module: nn.Module, inputs: list[torch.Tensor], grad_seed: int = 3):
    """Forward and backward (a fixed random output gradient) on each path: {path: (ops, output, input grads,
    parameter grads)}."""
    results = {}
    for path in PATHS:
        module.zero_grad()
        leaves = [t.clone().requires_grad_() for t in inputs]
        with force_path(path):
            out = module(*leaves)
            grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(grad_seed))
            out.backward(grad)
        params = {name: p.grad.clone() for name, p in module.named_parameters()}
        results[path] = (graph_ops(out), out.detach(), [t.grad for t in leaves], params)
    return results


def assert_paths_equal(results, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    (_, out_cpu, grads_cpu, params_cpu), (_, out_gpu, grads_gpu, params_gpu) = results["cpu"], results["cuda"]
    torch.testing.assert_close(out_gpu, out_cpu, atol=atol, rtol=rtol, msg=lambda m: f"outputs: {m}")
    for i, (a, b) in enumerate(zip(grads_gpu, grads_cpu)):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol, msg=lambda m, i=i: f"gradient of input {i}: {m}")
    assert params_gpu.keys() == params_cpu.keys()
    for name in params_cpu:
        assert params_cpu[name].abs().max() > 0, f"{name}: zero gradient, nothing compared"
        torch.testing.assert_close(params_gpu[name], params_cpu[name], atol=atol, rtol=rtol, msg=lambda m, name=name: f"gradient of {name}: {m}")


# ------------------------------------------------------------------------------------------- the dispatch itself
def test_path_follows_device_unless_forced():
    cpu, meta = torch.zeros(1), torch.zeros(1, device="meta")
    assert forced_path() is None
    assert path_for(cpu) == "cpu" and path_for(meta) == "cuda"  # every non-CPU device takes the GPU formulation
    with force_path("cuda"):
        assert path_for(cpu) == "cuda" and forced_path() == "cuda"
        with force_path("cpu"):
            assert path_for(meta) == "cpu"
        assert path_for(cpu) == "cuda"
    assert path_for(cpu) == "cpu"
    with pytest.raises(RuntimeError), force_path("cuda"):
        raise RuntimeError("the forced path is restored on errors too")
    assert forced_path() is None
    with pytest.raises(ValueError, match="cpu, cuda"):
        set_path("gpu")


# ----------------------------------------------------------------------------------------------- each layer
@pytest.mark.parametrize("kernel", [3, 5])
def test_dpe_paths_equal(kernel):
    """The DPE's depth-wise k x k x k Conv3d: channels-last view with the flipped-kernel input gradient (CPU) and
    a contiguous NCDHW Conv3d with autograd's backward (GPU) equal each other and nn.Conv3d."""
    dpe = DepthwiseConv3d(16, kernel)
    nn.init.normal_(dpe.conv.weight)
    nn.init.normal_(dpe.conv.bias)
    x = torch.randn(2, 4, 5, 6, 16)  # (B, T, h, w, C)
    results = run_both_paths(dpe, [x])
    assert "_SameDepthwiseConv3dBackward" in results["cpu"][0]
    assert "_SameDepthwiseConv3dBackward" not in results["cuda"][0] and "ConvolutionBackward0" in results["cuda"][0]
    assert_paths_equal(results)
    # both equal the textbook Conv3d on an NCDHW tensor
    expected = dpe.conv(x.permute(0, 4, 1, 2, 3).contiguous()).permute(0, 2, 3, 4, 1)
    torch.testing.assert_close(results["cpu"][1], expected.detach(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("shape", "kernel"), [((2, 4, 5, 6, 16), 3), ((2, 1, 3, 1, 8), 3), ((3, 2, 2, 5, 4), 5)],
                         ids=["clips", "one_frame_one_column", "fewer_frames_than_the_kernel"])
def test_dpe_weight_gradient_as_a_forward_convolution(shape, kernel):
    """The CPU DPE's weight gradient (per clip, a depth-wise convolution of the input by the output gradient) is
    torch's own depth-wise Conv3d weight gradient, on channels-last views as the DPE passes them, also where the
    clip is shorter or narrower than the kernel; under bf16 inputs it is summed in fp32."""
    channels = shape[-1]
    x, grad_out = (torch.randn(shape, dtype=torch.float64).permute(0, 4, 1, 2, 3) for _ in range(2))
    weight = torch.zeros(channels, 1, kernel, kernel, kernel, dtype=torch.float64)
    _, expected, _ = torch.ops.aten.convolution_backward(grad_out, x, weight, [channels], [1] * 3, [kernel // 2] * 3,
                                                         [1] * 3, False, [0] * 3, channels, [False, True, False])
    got = depthwise_weight_grad(x.float(), grad_out.float(), kernel)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    torch.testing.assert_close(got, expected.float(), atol=1e-5, rtol=1e-5)
    low = depthwise_weight_grad(x.bfloat16(), grad_out.bfloat16(), kernel)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, expected.float(), atol=0.05 * expected.abs().max().item(), rtol=0.0)


@pytest.mark.parametrize("kernel", [3, 5])
def test_temporal_conv_paths_equal(kernel):
    """The local modules' depth-wise temporal conv: k frame-shifted multiply-adds (CPU) and a depth-wise Conv2d
    on a (B, C, T, S) copy (GPU) equal each other and the official (k, 1, 1) grouped Conv3d."""
    conv = DepthwiseTemporalConv(12, kernel)
    nn.init.normal_(conv.weight)
    nn.init.normal_(conv.bias)
    x = torch.randn(2, 6, 7, 12)  # (B, T, S, C); T > kernel so every tap meets padding and interior frames
    results = run_both_paths(conv, [x])
    assert "ConvolutionBackward0" not in results["cpu"][0]
    assert "ConvolutionBackward0" in results["cuda"][0]
    assert_paths_equal(results)
    official = nn.Conv3d(12, 12, (kernel, 1, 1), padding=(kernel // 2, 0, 0), groups=12)
    with torch.no_grad():
        official.weight.copy_(conv.weight[:, None, :, None, None])
        official.bias.copy_(conv.bias)
        expected = official(x.permute(0, 3, 1, 2).unsqueeze(-1)).squeeze(-1).permute(0, 2, 3, 1)  # via (B,C,T,S,1)
    torch.testing.assert_close(results["cuda"][1], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("heads,queries", [(2, 1), (4, 3)])
def test_cross_attention_paths_equal(heads, queries):
    """The global blocks' attention on raw tokens: fused SDPA (CPU) and explicit matmuls + softmax (GPU)."""
    attention = CrossAttention(32, heads)
    for p in attention.parameters():
        nn.init.normal_(p, std=0.2)
    query, tokens = torch.randn(3, queries, 32), torch.randn(3, 40, 32)
    results = run_both_paths(attention, [query, tokens])
    assert "SoftmaxBackward0" not in results["cpu"][0]
    assert "SoftmaxBackward0" in results["cuda"][0]
    assert_paths_equal(results, atol=5e-5, rtol=1e-4)  # gradients of magnitude ~10: fp32 rounding


# ------------------------------------------------------------------------------------------------ whole models
@pytest.mark.parametrize("arch", [
    dict(local_type="lmhra", local_double=True, local_dpe=True, t_down=True),  # SSv2-like, every dispatched layer
    dict(local_type="st_adapter", local_double=False, local_dpe=True, num_queries=3),
    dict(local_type="none"),  # K400-like: the global DPE and attention only
], ids=["lmhra_x2_dpe_tdown", "st_adapter_q3", "local_none"])
def test_model_paths_equal(arch):
    """A whole training step's logits and every parameter gradient agree between the two formulations."""
    cfg = ModelConfig(vit="tiny", num_frames=4, num_classes=5, global_layers="2-4", head_dropout=0.0,
                      global_mlp_dropout=0.0, **arch)
    model = randomize_(build_model(cfg), torch.Generator().manual_seed(0)).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}  # BatchNorm's running statistics move in a step
    x = torch.randn(2, 3, 4, 32, 32)
    outputs, grads = {}, {}
    for path in PATHS:
        model.zero_grad()
        model.load_state_dict(state)
        with force_path(path):
            logits = model(x)
            (logits * torch.linspace(-1, 1, 5)).sum().backward()
        outputs[path] = logits.detach()
        grads[path] = {n: p.grad.clone() for n, p in model.named_parameters()}
    assert outputs["cpu"].std() > 0.01  # random weights everywhere: the logits depend on the input
    torch.testing.assert_close(outputs["cuda"], outputs["cpu"], atol=1e-5, rtol=1e-4)
    for name, grad in grads["cpu"].items():
        torch.testing.assert_close(grads["cuda"][name], grad, atol=1e-5, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}")


def test_gpu_path_under_bf16_autocast():
    """The GPU formulation under bf16 autocast (how GPUs train): finite, close to fp32, gradients reach every
    parameter."""
    cfg = ModelConfig(vit="tiny", num_frames=4, num_classes=5, global_layers="2-4", local_type="lmhra",
                      local_dpe=True, t_down=True, head_dropout=0.0, global_mlp_dropout=0.0)
    model = randomize_(build_model(cfg), torch.Generator().manual_seed(0), scale=0.05).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with force_path("cuda"):
        reference = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
            low.float().sum().backward()
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), reference.detach(), rtol=0.05, atol=0.05)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_the_dpe_gradient_benchmark_compares_both_on_every_shape(capsys):
    """benchmarks/dpe_grad.py: a row per DPE size, named with its shape (--batch-factor times the clips), with both
    times, the speed-up and a difference at rounding's size (the two compute the same gradient)."""
    from benchmarks.dpe_grad import SHAPES, main

    assert main(["--warmup", "0", "--iters", "1", "--batch-factor", "2"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[2:]
    assert [row[:29].strip() for row in rows] == [f"{name} ({2 * b}x{t}x{h}x{w}x{c})"
                                                   for name, (b, t, h, w, c) in SHAPES.items()]
    for row in rows:
        ms_torch, ms_uv2, speedup, diff = row[29:].split()
        assert float(ms_torch) > 0 and float(ms_uv2) > 0 and speedup.endswith("x") and float(diff) < 1e-3
