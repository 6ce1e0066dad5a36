"""What a run leaves on disk: run directory, fold files, checkpoints, epoch logs."""
