"""Train a small CNN on synthetic images with a multi-worker DataLoader, as NGC users do.

Each batch is ~75 MB of float32 pixels passed from worker processes through /dev/shm, so it
needs more than Docker's default 64 MB shm: ngcws.yaml's `shm_size` is what makes this work.
"""

from __future__ import annotations

import os
import sys
import time

try:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset
except ImportError:  # the test bed's python-only image: say so, do something small, succeed
    print("torch is not installed in this image; running a pure-Python least-squares fit instead")
    w = 0.0
    for step in range(200):
        grad = sum(2 * (w * x - 3.0 * x) * x for x in range(1, 10)) / 9
        w -= 0.01 * grad
    print(f"fitted w={w:.3f} (expected 3.000)")
    sys.exit(0 if abs(w - 3.0) < 1e-3 else 1)

SIZE = 128
BATCH = int(os.environ.get("BATCH", "384"))  # 384 x 3 x 128 x 128 x 4 bytes = 75 MB per batch
STEPS = int(os.environ.get("STEPS", "6"))


class Synthetic(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Images whose class is which colour channel is brightest."""

    def __len__(self) -> int:
        return BATCH * STEPS

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(index)
        label = index % 3
        image = torch.rand(3, SIZE, SIZE, generator=generator) * 0.5
        image[label] += 0.5
        return image, torch.tensor(label)


def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    model = nn.Sequential(
        nn.Conv2d(3, 8, kernel_size=8, stride=8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loader = DataLoader(Synthetic(), batch_size=BATCH, num_workers=2)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    print(f"torch {torch.__version__} on {device}; /dev/shm batches of {BATCH * 3 * SIZE * SIZE * 4 / 1e6:.0f} MB")
    start = time.time()
    losses = []
    for step, (images, labels) in enumerate(loader):
        images, labels = images.to(device), labels.to(device)
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        print(f"step {step}: loss {loss.item():.4f}", flush=True)
    print(f"trained {len(losses)} steps in {time.time() - start:.1f} s; loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    sys.exit(0 if losses[-1] < losses[0] else 1)


if __name__ == "__main__":
    main()
