"""Training (a job, layer 6): `trainer.train(config)` runs one training job described by a
`train_config.TrainConfig`.

Modules: `trainer` (the loop), `train_config` (every hyper-parameter, the flag and override parsers),
`optim` (parameter groups, schedule, warm-up), `ema`, `rng` (seeding, RNG snapshots), `distributed`
(torchrun DDP), `data_setup` (loaders of a run) and `plots` (results.csv reader and results.png).
Checkpoints are `lrnet.weights`. Import names from their modules.
"""
