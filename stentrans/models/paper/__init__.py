"""The paper's stEnTrans network: configuration, network, training, checkpoints, tiled prediction."""
