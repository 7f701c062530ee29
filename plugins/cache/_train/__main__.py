"""``python -m costmw.plugins.cache._train --out DIR``: train the cache verifier from nothing."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

from ._fit import TrainConfig, train_verifier


def parse(argv: Sequence[str] | None = None) -> tuple[Path, TrainConfig]:
    parser = argparse.ArgumentParser(prog="python -m costmw.plugins.cache._train",
                                     description="Train, export (int8 ONNX) and calibrate the cache verifier.")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the model files (encoder.onnx, head.npz, ...)")
    for field in dataclasses.fields(TrainConfig):
        default = field.default
        flag = f"--{field.name.replace('_', '-')}"
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            parser.add_argument(flag, type=type(default), default=default, help=f"default {default}")
    args = parser.parse_args(argv)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    return args.out, TrainConfig(**values)


def main(argv: Sequence[str] | None = None) -> None:
    out, cfg = parse(argv)
    print(json.dumps(train_verifier(out, cfg), indent=2))


if __name__ == "__main__":
    main()
