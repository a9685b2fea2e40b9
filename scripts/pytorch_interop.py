#!/usr/bin/env python3
"""Check that sverka checkpoints are PyTorch state_dicts.

Loads a checkpoint written by `cargo run --release --example mnist -- --save m1.safetensors`
(or `--example autoencoder -- --save ae.safetensors`) with `safetensors.torch.load_file`
into the equivalent `torch.nn.Sequential` with `load_state_dict(strict=True)`, evaluates it
on the test split, and prints the example's final line; it must match the example's.

    python3 scripts/pytorch_interop.py m1.safetensors --model mnist
    python3 scripts/pytorch_interop.py ae.safetensors --model autoencoder

`--outputs FILE` also writes the eval-mode outputs on the first 16 test images as raw
little-endian f32, and `--export FILE` writes the state_dict back with
`safetensors.torch.save_file` (for the reverse direction: load it with
`sverka::nn::checkpoint::load`). Needs `torch`, `safetensors` and `numpy`.
"""

import argparse
import gzip
import pathlib

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn


def mnist_cnn() -> nn.Sequential:
    """The M1 network of DESIGN.md section 5, as built by examples/mnist.rs."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Dropout2d(0.25), nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def autoencoder() -> nn.Sequential:
    """The network of examples/autoencoder.rs."""
    def block(conv, channels):
        return [conv, nn.BatchNorm2d(channels), nn.ReLU()]
    return nn.Sequential(
        *block(nn.Conv2d(1, 16, 3, stride=2, padding=1), 16),
        *block(nn.Conv2d(16, 32, 3, stride=2, padding=1), 32),
        *block(nn.Conv2d(32, 8, 3, padding=1), 8),
        *block(nn.ConvTranspose2d(8, 32, 3, stride=2, padding=1, output_padding=1), 32),
        *block(nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), 16),
        nn.Conv2d(16, 1, 3, padding=1), nn.Sigmoid(),
    )


def read_idx(path: pathlib.Path) -> np.ndarray:
    """An IDX file of unsigned bytes (raw or gzip) as a numpy array."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    assert raw[:3] == b"\x00\x00\x08", f"{path}: not an unsigned-byte IDX file"
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(data: pathlib.Path, name: str) -> pathlib.Path:
    gz = data / f"{name}.gz"
    return gz if gz.exists() else data / name


def main() -> None:
    root = pathlib.Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=pathlib.Path)
    parser.add_argument("--model", choices=["mnist", "autoencoder"], required=True)
    parser.add_argument("--data", type=pathlib.Path, default=root / "data" / "mnist-10k")
    parser.add_argument("--outputs", type=pathlib.Path)
    parser.add_argument("--export", type=pathlib.Path)
    args = parser.parse_args()

    model = mnist_cnn() if args.model == "mnist" else autoencoder()
    state = load_file(str(args.checkpoint))
    model.load_state_dict(state, strict=True)
    model.eval()
    print(f"loaded {len(state)} tensors from {args.checkpoint} into {args.model} with strict=True")

    images = torch.from_numpy(read_idx(find(args.data, "t10k-images-idx3-ubyte")).astype(np.float32) / 255.0)
    images = images.unsqueeze(1)
    labels = torch.from_numpy(read_idx(find(args.data, "t10k-labels-idx1-ubyte")).astype(np.int64))
    with torch.no_grad():
        outputs = torch.cat([model(images[i:i + 500]) for i in range(0, len(images), 500)])
    if args.outputs:
        outputs[:16].numpy().astype("<f4").tofile(args.outputs)
    if args.export:
        save_file(model.state_dict(), str(args.export))
    if args.model == "mnist":
        loss = nn.functional.cross_entropy(outputs, labels).item()
        accuracy = (outputs.argmax(1) == labels).float().mean().item()
        print(f"test_loss={loss:.4f}")
        print(f"test_accuracy={accuracy:.4f}")
    else:
        print(f"test_mse={nn.functional.mse_loss(outputs, images).item():.4f}")


if __name__ == "__main__":
    main()
