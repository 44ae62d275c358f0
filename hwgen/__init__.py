"""hwgen: Amaranth generators for efficient-DNN arithmetic."""
