"""Two-process DDP on CPU (gloo) with GradscopeCallback: ``python tests/integrations/ddp_run.py TRACE``.

A script, not a test function: Lightning's ``strategy="ddp"`` starts the other rank by running this
same command again (test_lightning.py runs it in a subprocess).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from gradscope.integrations.lightning import GradscopeCallback  # noqa: E402
from tests.integrations import lightning_kit as kit  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(1)
    trainer = kit.trainer(strategy="ddp", devices=2, callbacks=[GradscopeCallback(sys.argv[1])])
    trainer.fit(kit.MixinModule(), kit.loader(batch_size=16))
