"""LightningModules that wrap any architecture for a task: causal language modelling, classification."""
