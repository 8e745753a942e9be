"""gradscope where researchers already train: optional integrations, each behind its own extra.

* :mod:`gradscope.integrations.lightning` — ``GradscopeCallback`` for any LightningModule and
  ``SharpnessAwareMixin`` for the SAM closure (``pip install 'gradscope[lightning]'``);
* :mod:`gradscope.integrations.chemprop` — chemprop v2 MPNNs trained with GraphSAM/SAM and
  recorded, their checkpoints on gradscope's loss landscapes (``gradscope[chemprop]``);
* :mod:`gradscope.integrations.sinks` — TensorBoard / W&B / logger views fed from the
  recorder's host-side flush (``gradscope[tensorboard]``, ``gradscope[wandb]``);
* :mod:`gradscope.integrations.epochs` — the epoch-boundary rules of ``gradscope record``
  (anchoring, ρ schedule) for loops gradscope did not write.

Nothing here is imported by ``import gradscope``; each module imports its framework itself.
See docs/integrations.md.
"""
