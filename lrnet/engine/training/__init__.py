"""Training: `trainer.train(config)` runs one training job described by a `train_config.TrainConfig`.

Modules: `trainer` (the loop), `train_config` (every hyper-parameter, the flag and override parsers),
`optim` (parameter groups, schedule, warm-up), `ema`, `rng` (seeding, RNG snapshots), `distributed`
(torchrun DDP), `data_setup` (loaders of a run), `checkpoint` (atomic save, safe load) and `plots`
(results.csv reader and results.png). Nothing is imported here, so that importing a light module such
as `train_config` (the `lrnet train` parser) does not load torch.
"""
