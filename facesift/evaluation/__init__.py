"""Evaluation with the field's standard protocols, on any dataset a user points it at.

    from facesift.evaluation import evaluate_pairs, evaluate_identification, load_identity_folders
    report = evaluate_pairs("lfw/", "pairs.txt")          # PairsReport: 10-fold accuracy, ROC, AUC, TAR@FAR, EER
    print(report.accuracy, report.tar(1e-3))
    ident = evaluate_identification(load_identity_folders("people/"), unknown_fraction=0.5)

Embeddings are cached on disk by image content, model, detector and degradation (``embeddings``);
``report.write_report`` turns reports into results.json, PNG plots and report.md.
"""

from facesift.evaluation.calibration import Calibration, calibrate, write_card
from facesift.evaluation.datasets import (
    IdentityDataset,
    Pair,
    load_identity_folders,
    load_identity_roots,
    read_attributes,
    read_csv_pairs,
    read_lfw_pairs,
    read_pairs,
)
from facesift.evaluation.degradations import CropDegradation
from facesift.evaluation.embeddings import Embeddings, default_cache_dir, embed_images
from facesift.evaluation.identification import IdentificationReport, evaluate_identification
from facesift.evaluation.pairs import PairsReport, evaluate_all_pairs, evaluate_pairs
from facesift.evaluation.report import write_report
from facesift.evaluation.sweep import SweepReport, sweep

__all__ = [
    "Calibration",
    "CropDegradation",
    "Embeddings",
    "IdentificationReport",
    "IdentityDataset",
    "Pair",
    "PairsReport",
    "SweepReport",
    "calibrate",
    "default_cache_dir",
    "embed_images",
    "evaluate_all_pairs",
    "evaluate_identification",
    "evaluate_pairs",
    "load_identity_folders",
    "load_identity_roots",
    "read_attributes",
    "read_csv_pairs",
    "read_lfw_pairs",
    "read_pairs",
    "sweep",
    "write_card",
    "write_report",
]
