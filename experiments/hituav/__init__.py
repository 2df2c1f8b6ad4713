"""The HIT-UAV real-image benchmark of experiments/REAL.md: prepare, train and score both trainers, report."""
