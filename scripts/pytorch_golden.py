#!/usr/bin/env python3
"""Writes tests/data/pytorch_golden.txt: outputs and gradients computed by PyTorch for
random small problems of every op, which tests/pytorch_parity.rs compares with sverka.

Needs torch (any recent CPU build): python3 scripts/pytorch_golden.py
The file is committed, so the Rust test runs without Python.

Format, one block per case:
    case <op> key=value ...          (spec fields; padding as top,bottom,left,right)
    <name> <len> v0 v1 ...           (float32 tensors, flattened, in PyTorch's layouts)
    end
Gradients are of the loss sum(output * r) with r stored as `grad_output`.
"""
import random
import sys

import torch
import torch.nn.functional as F

torch.manual_seed(0)
random.seed(0)
lines = []


def emit(op, fields, tensors):
    lines.append("case " + op + " " + " ".join(f"{k}={v}" for k, v in fields.items()))
    for name, t in tensors.items():
        flat = t.detach().to(torch.float32).reshape(-1).tolist()
        lines.append(f"{name} {len(flat)} " + " ".join(f"{v:.9g}" for v in flat))
    lines.append("end")


def pad_str(p):
    return ",".join(str(v) for v in p)


def conv_case(transposed):
    for _ in range(100):
        g = random.choice([1, 1, 2, 3])
        ci = g * random.randint(1, 3)
        co = g * random.randint(1, 3)
        kh, kw = random.randint(1, 4), random.randint(1, 4)
        sh, sw = random.randint(1, 3), random.randint(1, 3)
        dh, dw = random.randint(1, 2), random.randint(1, 2)
        ih, iw = random.randint(1, 7), random.randint(1, 7)
        n = random.randint(1, 2)
        if not transposed:
            p = [random.randint(0, 2) for _ in range(4)]  # top, bottom, left, right
            if ih + p[0] + p[1] < dh * (kh - 1) + 1 or iw + p[2] + p[3] < dw * (kw - 1) + 1:
                continue
            x = torch.randn(n, ci, ih, iw, requires_grad=True)
            w = torch.randn(co, ci // g, kh, kw, requires_grad=True)
            b = torch.randn(co, requires_grad=True)
            # Asymmetric padding as an explicit zero pad (F.pad order: left, right, top, bottom).
            y = F.conv2d(F.pad(x, (p[2], p[3], p[0], p[1])), w, b, stride=(sh, sw), dilation=(dh, dw), groups=g)
            extra = {}
        else:
            ph, pw = random.randint(0, 2), random.randint(0, 2)
            oph, opw = random.randint(0, max(sh, dh) - 1), random.randint(0, max(sw, dw) - 1)
            oh = (ih - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
            ow = (iw - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
            if oh < 1 or ow < 1:
                continue
            p = [ph, ph, pw, pw]
            x = torch.randn(n, ci, ih, iw, requires_grad=True)
            w = torch.randn(ci, co // g, kh, kw, requires_grad=True)
            b = torch.randn(co, requires_grad=True)
            y = F.conv_transpose2d(x, w, b, stride=(sh, sw), padding=(ph, pw), output_padding=(oph, opw),
                                   groups=g, dilation=(dh, dw))
            extra = {"op": f"{oph},{opw}"}
        r = torch.randn_like(y)
        (y * r).sum().backward()
        fields = {"n": n, "ci": ci, "co": co, "ih": ih, "iw": iw, "kh": kh, "kw": kw, "sh": sh, "sw": sw,
                  "pad": pad_str(p), "dh": dh, "dw": dw, "g": g, **extra}
        emit("conv_transpose2d" if transposed else "conv2d", fields,
             {"input": x, "weight": w, "bias": b, "output": y, "grad_output": r,
              "grad_input": x.grad, "grad_weight": w.grad, "grad_bias": b.grad})
        return


def pool_case(kind):
    while True:
        kh, kw = random.randint(1, 4), random.randint(1, 4)
        sh, sw = random.randint(1, 3), random.randint(1, 3)
        ph, pw = random.randint(0, kh // 2), random.randint(0, kw // 2)
        dh, dw = (random.randint(1, 2), random.randint(1, 2)) if kind == "max" else (1, 1)
        ih, iw = random.randint(1, 8), random.randint(1, 8)
        ceil = random.random() < 0.5
        cip = random.random() < 0.5
        n, c = random.randint(1, 2), random.randint(1, 3)
        x = torch.randn(n, c, ih, iw, requires_grad=True)
        try:
            if kind == "max":
                y, idx = F.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode=ceil, return_indices=True)
            else:
                y = F.avg_pool2d(x, (kh, kw), (sh, sw), (ph, pw), ceil_mode=ceil, count_include_pad=cip)
        except RuntimeError:
            continue
        if y.numel() == 0 or not torch.isfinite(y).all():
            continue  # windows entirely in padding: sverka rejects those specs
        r = torch.randn_like(y)
        (y * r).sum().backward()
        fields = {"n": n, "c": c, "ih": ih, "iw": iw, "kh": kh, "kw": kw, "sh": sh, "sw": sw,
                  "pad": pad_str([ph, ph, pw, pw]), "dh": dh, "dw": dw, "ceil": int(ceil), "cip": int(cip)}
        tensors = {"input": x, "output": y, "grad_output": r, "grad_input": x.grad}
        if kind == "max":
            tensors["indices"] = idx.to(torch.float32)
        emit(kind + "_pool2d", fields, tensors)
        return


def bn_case():
    n, c, h, w = random.randint(1, 3), random.randint(1, 4), random.randint(1, 5), random.randint(2, 5)
    bn = torch.nn.BatchNorm2d(c, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(c))
        bn.bias.copy_(torch.randn(c))
        bn.running_mean.copy_(torch.randn(c))
        bn.running_var.copy_(torch.rand(c) + 0.5)
    rm0, rv0 = bn.running_mean.clone(), bn.running_var.clone()
    x = (torch.randn(n, c, h, w) * 3 + 1).requires_grad_(True)
    y = bn(x)
    r = torch.randn_like(y)
    (y * r).sum().backward()
    bn.eval()
    xe = torch.randn(n, c, h, w)
    ye = bn(xe)
    emit("batch_norm2d", {"n": n, "c": c, "ih": h, "iw": w},
         {"input": x, "gamma": bn.weight, "beta": bn.bias, "running_mean_before": rm0, "running_var_before": rv0,
          "output": y, "running_mean": bn.running_mean, "running_var": bn.running_var, "grad_output": r,
          "grad_input": x.grad, "grad_gamma": bn.weight.grad, "grad_beta": bn.bias.grad,
          "eval_input": xe, "eval_output": ye})


for _ in range(24):
    conv_case(False)
for _ in range(24):
    conv_case(True)
for _ in range(20):
    pool_case("max")
for _ in range(20):
    pool_case("avg")
for _ in range(8):
    bn_case()

out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/pytorch_golden.txt"
with open(out, "w") as f:
    f.write(f"# generated by scripts/pytorch_golden.py with torch {torch.__version__}; do not edit\n")
    f.write("\n".join(lines) + "\n")
print(f"wrote {out}: {sum(1 for l in lines if l.startswith('case'))} cases")
