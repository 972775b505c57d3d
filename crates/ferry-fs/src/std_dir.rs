//! A host directory as a Ferry file system (placeholder; being written).
