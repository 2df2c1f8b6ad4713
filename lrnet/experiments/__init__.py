"""Experiments (a job, layer 6): studies made of several training runs.

Modules: `ablation` (the paper's ablation tables as data, and their resumable runner) and `demo` (the
end-to-end story on synthetic data behind `lrnet demo`).
"""
