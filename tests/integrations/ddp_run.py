"""Two-process DDP on CPU (gloo) with GradscopeCallback: ``python tests/integrations/ddp_run.py TRACE [--auto]``.

A script, not a test function: Lightning's ``strategy="ddp"`` starts the other rank by running this
same command again (test_lightning.py runs it in a subprocess). Each rank reads the rows of its
parity in file order (an unshuffled ``DistributedSampler``), so the two ranks' batches of 16 make
the single-process batches of 32.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
from torch.utils.data import DataLoader, DistributedSampler  # noqa: E402

from gradscope.integrations.lightning import GradscopeCallback  # noqa: E402
from tests.integrations import lightning_kit as kit  # noqa: E402


def _unshuffled_loader(self) -> DataLoader:  # noqa: ANN001 - a LightningModule method
    data = kit.make_data()
    return DataLoader(data, batch_size=16, sampler=DistributedSampler(data, shuffle=False))


if __name__ == "__main__":
    torch.set_num_threads(1)
    base = kit.AutoModule if "--auto" in sys.argv else kit.MixinModule
    module = type("DDPModule", (base,), {"train_dataloader": _unshuffled_loader})()
    trainer = kit.trainer(strategy="ddp", devices=2, use_distributed_sampler=False,
                          callbacks=[GradscopeCallback(sys.argv[1])])
    trainer.fit(module)
