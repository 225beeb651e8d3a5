"""The pipeline's YOLO checkpoints: how they are written and read, and the one module class they
pickle beside Ultralytics' own.

A pickled checkpoint names each module's class by its import path, so this module's path is part
of the file format: moving C2fTwoConv breaks every checkpoint written before (tests/test_prune.py
loads one written by an older layout).
"""
from copy import deepcopy

import torch
from torch import nn

import posecompress  # noqa: F401  (Ultralytics offline before it is imported)


class C2fTwoConv(nn.Module):
    """Ultralytics' C2f with its first 1x1 convolution split into two, same weights, same function.

    C2f runs one convolution and `chunk`s its output in halves; Torch-Pruning's dependency graph
    cannot follow `chunk` (IndexError ... out of bounds on the first step). Two convolutions, one
    per half, let each half lose its own channels. The same holds for every block running C2f's
    forward with other inner blocks (YOLO11 and YOLO26's C3k2: C3k or Bottleneck + PSABlock).
    Pruned checkpoints pickle this class by its module path, posecompress.yolo.checkpoint, so
    that path is part of the file format: loading them needs this project importable (it is, from
    the project root), and the class must stay here.
    """

    def __init__(self, c2f: nn.Module):
        super().__init__()
        self.cv0, self.cv1 = _conv_half(c2f.cv1, 0, c2f.c), _conv_half(c2f.cv1, c2f.c, 2 * c2f.c)
        self.cv2, self.m = c2f.cv2, c2f.m
        for attr in ("f", "i", "type", "np"):  # the routing Ultralytics' model forward reads
            if hasattr(c2f, attr):
                setattr(self, attr, getattr(c2f, attr))

    def forward(self, x):
        y = [self.cv0(x), self.cv1(x)]
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


def _conv_half(conv, start: int, stop: int):
    """A copy of an Ultralytics Conv (conv + bn + act) keeping output channels start:stop."""
    half = deepcopy(conv)
    c, bn = half.conv, half.bn
    c.weight = nn.Parameter(c.weight.detach()[start:stop].clone())
    c.out_channels = stop - start
    bn.weight = nn.Parameter(bn.weight.detach()[start:stop].clone())
    bn.bias = nn.Parameter(bn.bias.detach()[start:stop].clone())
    bn.running_mean = bn.running_mean[start:stop].clone()
    bn.running_var = bn.running_var[start:stop].clone()
    bn.num_features = stop - start
    return half


def save_checkpoint(model, path, source_ckpt: dict, pruning: dict) -> None:
    """Save `model` as an Ultralytics checkpoint, in float32, with a record of how it was pruned.

    Float32 (where Ultralytics saves half) so the file evaluates exactly as the model in memory.
    The date is the source checkpoint's, so the same pruning of the same file gives the same bytes.
    """
    from ultralytics import __version__

    torch.save({"model": deepcopy(model).float(), "ema": None, "epoch": -1, "optimizer": None,
                "train_args": dict(source_ckpt.get("train_args") or {}), "pruning": pruning,
                "date": source_ckpt.get("date"), "version": __version__}, path)


def read_checkpoint(path) -> dict:
    """The raw checkpoint dict of a .pt file (with its pruning record, if any)."""
    from ultralytics.nn.tasks import torch_safe_load

    return torch_safe_load(str(path))[0]
