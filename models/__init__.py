"""Networks built only from minigrad ops."""
