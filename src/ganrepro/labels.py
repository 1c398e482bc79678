"""Display names shared by the report and the command line, defined once.

    FRAMEWORK_LABELS  framework key -> its name in prose and legends ("torch" -> "PyTorch")
    METRIC_TITLES     metric key -> the report's section title (Markdown/HTML headings)
    METRIC_LABELS     metric key -> the figures' axis label and panel title

The two metric dicts are distinct texts on purpose (the figures name the target in W1's label, the
report's headings name KDE's unit); both are part of the committed reports' bytes. Framework-free.
"""
from __future__ import annotations

FRAMEWORK_LABELS = {"torch": "PyTorch", "tf": "TensorFlow"}

METRIC_TITLES = {
    "ks": "KS statistic (lower is better)",
    "w1": "Wasserstein-1 (lower is better)",
    "kde_ll": "KDE log-likelihood, nats (higher is better)",
}

METRIC_LABELS = {
    "ks": "KS statistic (lower is better)",
    "w1": "Wasserstein-1 to N(4, 0.5) (lower is better)",
    "kde_ll": "KDE log-likelihood (higher is better)",
}


def framework_label(framework: str) -> str:
    """``framework``'s display name (an unknown key is shown as it is)."""
    return FRAMEWORK_LABELS.get(framework, framework)
