"""Quantization-aware training through PyTorch (an optional extra: ``pip install hwsim[torch]``).

:func:`train_qat` takes a post-training :class:`~hwsim.quant.convert.QuantizedModel` as its starting
point, builds a torch module of its prepared float graph (batch norm folded, ReLU fused), and trains the
weights together with learnable step sizes (LSQ: Esser et al., "Learned Step Size Quantization", ICLR
2020): one scale per output channel of every weight and one per activation tensor, zero points fixed at
their calibrated values. The fake quantizer's forward pass is hwsim's arithmetic bit for bit
(:func:`fake_quant` equals :func:`hwsim.numerics.ops.fake_quantize`: float32 division, round half to even,
add the zero point, clamp, subtract it, float32 multiply); its backward pass is the straight-through
estimator with LSQ's step-size gradient (scaled by 1 / sqrt(n Q_p)). The trained weights and step sizes come
back into hwsim: weights are requantized with the learned scales, and the integer graph is rebuilt, so the
result is evaluated on the integer path like any other recipe.
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.errors import RuntimeUnavailable
from hwsim.quant.ptq import bias_tensor


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeUnavailable(
            f"quantization-aware training needs PyTorch (pip install hwsim[torch]): {exc}"
        ) from exc
    return torch


_ROUND_STE = []


def _round_ste():
    """The round-with-straight-through-gradient autograd function (built once, torch imported lazily)."""
    if _ROUND_STE:
        return _ROUND_STE[0]
    torch = _torch()

    class RoundSTE(torch.autograd.Function):
        """round half to even forward (torch.round), identity backward."""

        @staticmethod
        def forward(ctx, x):
            return torch.round(x)

        @staticmethod
        def backward(ctx, g):
            return g

    _ROUND_STE.append(RoundSTE)
    return RoundSTE


def fake_quant(x, scale, zero_point, qmin: int, qmax: int, grad_scale: float = 1.0):
    """LSQ fake quantization: (clamp(round(x / s) + z, qmin, qmax) - z) * s, all in float32.

    The division, rounding (half to even), clamp and multiply are those of
    :func:`hwsim.numerics.ops.fake_quantize`, so the forward values are identical bit for bit. Gradients: the
    straight-through estimator for x (zero outside the clamp range) and LSQ's for the scale, multiplied
    by ``grad_scale`` (a hook, so the forward value of the scale is untouched).
    """
    torch = _torch()
    if scale.requires_grad and grad_scale != 1.0 and not getattr(scale, "_hwsim_hooked", False):
        scale.register_hook(lambda g: g * grad_scale)
        scale._hwsim_hooked = True  # a parameter is hooked once; a per-forward view gets its own hook
    q = torch.clamp(_round_ste().apply(x / scale) + zero_point, qmin, qmax)
    return (q - zero_point) * scale


def build_module(qm):
    """A torch module computing ``qm``'s prepared graph with fake-quantized weights and activations."""
    torch = _torch()
    from torch import nn

    class QatNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.weights = nn.ParameterDict()
            self.biases = nn.ParameterDict()
            self.w_scales = nn.ParameterDict()
            self.a_scales = nn.ParameterDict()
            self.keys: dict[str, str] = {}
            g = qm.graph
            for i, op in enumerate(g.ops):
                self.keys[op.name] = f"l{i}"
                lq = qm.layers.get(op.name)
                if lq is None:
                    continue
                w = g.tensor(op.inputs[1]).data
                k = self.keys[op.name]
                self.weights[k] = nn.Parameter(torch.from_numpy(_to_torch_layout(w, op.kind).copy()))
                bias = (
                    g.tensor(op.inputs[2]).data
                    if len(op.inputs) > 2 and op.inputs[2]
                    else np.zeros(lq.weight.values.shape[0], np.float32)
                )
                self.biases[k] = nn.Parameter(torch.from_numpy(bias.astype(np.float32).copy()))
                s = np.broadcast_to(lq.weight.scale.astype(np.float32), (lq.weight.values.shape[0],)).copy()
                self.w_scales[k] = nn.Parameter(torch.from_numpy(s))
            for j, (name, tq) in enumerate(qm.tensors.items()):
                self.keys[name] = f"a{j}"
                self.a_scales[f"a{j}"] = nn.Parameter(torch.tensor(float(tq.scale), dtype=torch.float32))

        def act(self, name, x):
            root = qm.alias.get(name, name)
            tq = qm.tensors.get(root)
            if tq is None:
                return x
            s = self.a_scales[self.keys[root]]
            gscale = 1.0 / math.sqrt(max(x[0].numel() * tq.fmt.max, 1))
            return fake_quant(x, s, float(tq.zero), tq.fmt.min, tq.fmt.max, gscale)

        def weight(self, op):
            k = self.keys[op.name]
            lq = qm.layers[op.name]
            w = self.weights[k]
            fmt = lq.weight_spec.fmt
            s = self.w_scales[k]
            z = torch.from_numpy(np.broadcast_to(lq.weight.zero.astype(np.float32), s.shape).copy())
            shape = [-1] + [1] * (w.dim() - 1)
            gscale = 1.0 / math.sqrt(max(w[0].numel() * fmt.max, 1))
            return fake_quant(w, s.view(shape), z.view(shape), fmt.min, fmt.max, gscale), self.biases[k]

        def forward(self, x):
            g = qm.graph
            values = {g.inputs[0]: self.act(g.inputs[0], x)}
            for op in g.ops:
                y = _torch_op(op, values, self, g)
                values[op.outputs[0]] = self.act(op.outputs[0], y)
            return values[g.outputs[0]]

    return QatNet()


def _to_torch_layout(w: np.ndarray, kind: str) -> np.ndarray:
    if kind == "conv2d":
        return np.ascontiguousarray(w.transpose(0, 3, 1, 2))  # OHWI -> OIHW
    if kind == "depthwise_conv2d":
        return np.ascontiguousarray(w.transpose(2, 0, 1)[:, None])  # [kh, kw, C] -> [C, 1, kh, kw]
    return w


def _from_torch_layout(w: np.ndarray, kind: str) -> np.ndarray:
    if kind == "conv2d":
        return np.ascontiguousarray(w.transpose(0, 2, 3, 1))
    if kind == "depthwise_conv2d":
        return np.ascontiguousarray(w[:, 0].transpose(1, 2, 0))
    return w


def _torch_op(op, values, net, g):
    torch = _torch()
    F = torch.nn.functional
    a = op.attrs
    x = values.get(op.inputs[0])
    if op.kind in ("conv2d", "depthwise_conv2d", "fully_connected"):
        w, b = net.weight(op)
        if op.kind == "fully_connected":
            y = F.linear(x, w, b)
        else:
            top, bottom, left, right = _pads(a, x.shape[2:], w.shape[2:])
            xp = F.pad(x, (left, right, top, bottom))
            groups = x.shape[1] if op.kind == "depthwise_conv2d" else a.get("groups", 1)
            y = F.conv2d(xp, w, b, stride=a["stride"], dilation=a["dilation"], groups=groups)
        act = a.get("activation")
        return torch.relu(y) if act == "relu" else (torch.clamp(y, 0, 6) if act == "relu6" else y)
    if op.kind == "global_avg_pool":
        return x.mean(dim=(2, 3), keepdim=True)
    if op.kind == "flatten":
        return torch.flatten(x, a["axis"] % x.dim())
    if op.kind == "max_pool2d":
        top, bottom, left, right = _pads(a, x.shape[2:], a["kernel"])
        return F.max_pool2d(
            F.pad(x, (left, right, top, bottom), value=-float("inf")), a["kernel"], a["stride"]
        )
    if op.kind == "add":
        y = values[op.inputs[0]] + values[op.inputs[1]]
        return torch.relu(y) if a.get("activation") == "relu" else y
    if op.kind == "reshape_to":
        return x.reshape([x.shape[i] if d == 0 else d for i, d in enumerate(a["shape"])])
    raise NotImplementedError(f"QAT: op kind {op.kind!r} is not supported yet")


def _pads(attrs, in_hw, kernel):
    from hwsim.numerics.ops import conv_geometry

    return conv_geometry(
        tuple(int(v) for v in in_hw),
        tuple(int(k) for k in kernel),
        attrs.get("stride", 1),
        attrs.get("padding", "valid"),
        attrs.get("dilation", 1),
    ).pads


def train_qat(qm, x: np.ndarray, y: np.ndarray, spec=None):
    """Train ``qm`` (static, uniform per-tensor/per-channel weights) with QAT on (x, y); return the new
    :class:`~hwsim.quant.convert.QuantizedModel` whose integer graph uses the learned weights and scales."""
    torch = _torch()
    from hwsim.errors import ConfigError
    from hwsim.quant.recipe import QatSpec

    spec = spec or qm.recipe.qat or QatSpec()
    if qm.dynamic:
        raise ConfigError("qat: dynamic recipes have no activation scales to learn")
    for lq in qm.layers.values():
        if lq.weight_spec.scheme != "uniform" or lq.weight.granularity == "per_group":
            raise ConfigError(
                f"qat: layer {lq.op!r} uses {lq.weight_spec.scheme} {lq.weight.granularity} "
                "weights; QAT learns uniform per-tensor or per-channel scales"
            )
    torch.manual_seed(spec.seed)
    net = build_module(qm)
    opt = torch.optim.Adam(
        [
            {"params": list(net.weights.values()) + list(net.biases.values())},
            {"params": list(net.w_scales.values()) + list(net.a_scales.values())},
        ],
        lr=spec.learning_rate,
    )
    xt, yt = torch.from_numpy(np.asarray(x, np.float32)), torch.from_numpy(np.asarray(y, np.int64))
    gen = torch.Generator().manual_seed(spec.seed)
    for _ in range(spec.epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(spec.batch):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
            with torch.no_grad():
                for p in list(net.w_scales.values()) + list(net.a_scales.values()):
                    p.clamp_(min=1e-8)
    return _write_back(qm, net)


def _write_back(qm, net):
    """A new QuantizedModel with the trained weights, biases and scales."""
    from hwsim.numerics import ops
    from hwsim.quant import convert as C
    from hwsim.quant.calibrate import WeightQuant, weight_rows
    from hwsim.quant.ptq import copy_graph

    graph = copy_graph(qm.graph)
    layers = {}
    for op in graph.ops:
        lq = qm.layers.get(op.name)
        if lq is None:
            continue
        k = net.keys[op.name]
        w = _from_torch_layout(net.weights[k].detach().numpy().astype(np.float32), op.kind)
        graph.tensor(op.inputs[1]).data = w
        bias = net.biases[k].detach().numpy().astype(np.float32)
        bias_tensor(graph, op, bias.size, bias)
        scale = net.w_scales[k].detach().numpy().astype(np.float32)
        fmt = lq.weight_spec.fmt
        zero = np.broadcast_to(lq.weight.zero, scale.shape).astype(np.int64)
        rows = weight_rows(w, op.kind)
        codes = ops.quantize(rows, scale, zero, fmt, axis=0).astype(np.int64)
        per = "per_channel" if scale.size > 1 else "per_tensor"
        wq = WeightQuant(
            codes,
            scale if per == "per_channel" else scale[:1],
            zero if per == "per_channel" else zero[:1],
            per,
            None,
            lq.weight.bits,
        )
        layers[op.name] = C.LayerQuant(op.name, op.kind, wq, lq.weight_spec, lq.input_spec, lq.accumulator)
    tensors = {}
    for name, tq in qm.tensors.items():
        s = np.float32(net.a_scales[net.keys[name]].detach().numpy())
        tensors[name] = C.TensorQuant(tq.fmt, s, tq.zero, tq.lo, tq.hi)
    recipe = qm.recipe.model_copy(update={"name": f"{qm.recipe.name}+qat"})
    new = C.QuantizedModel(
        recipe,
        qm.source,
        qm.reference,
        graph,
        layers,
        tensors,
        dict(qm.alias),
        graph,
        graph,
        list(qm.equalized_pairs),
        dict(qm.seconds),
    )
    C._quantize_biases(new)
    new.fake_graph = C._fake_graph(new)
    new.integer_graph = C._integer_graph(new)
    return new
