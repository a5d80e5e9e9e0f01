"""Training on a CPU (the ``train`` extra: ``pip install 'facesift[train]'``, torch 2.13.0 CPU build).

data.py (split, crops, degradation, balanced sampling) -> losses.py -> sface.py (SFace in PyTorch, ONNX
export) -> trainer.py (the loop; the embedder and cross-resolution tasks) and superres.py (face SR); analysis.py
(the analyze networks) and agegap.py (SFace fine-tuned for age gaps) train on cached SFace maps;
``facesift train`` is facesift/cli/training.py. Nothing here is imported by the core package; progress and
log lines leave through callbacks (``Trainer.fit``).
"""
