"""Embedding baselines evaluated with kgt5mm's own filtered ranking protocol."""

from kgt5mm.baselines.kge import KGEConfig, KGEModel, KGEResult, evaluate_kge, train_kge

__all__ = ["KGEConfig", "KGEModel", "KGEResult", "evaluate_kge", "train_kge"]
