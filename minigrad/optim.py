"""Optimizers: SGD, Adam, gradient clipping."""
