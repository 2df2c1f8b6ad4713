"""Experiments: studies made of several training runs.

Modules: `ablation` (the paper's ablation tables as data, and their resumable runner) and `demo` (the
end-to-end story on synthetic data behind `lrnet demo`). Nothing is imported here, so that the CLI
parser stays fast.
"""
