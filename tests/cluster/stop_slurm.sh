#!/usr/bin/env bash
# Stop the test SLURM cluster started by start_slurm.sh (same environment variables).
exec bash "$(dirname "$0")/start_slurm.sh" stop "$@"
