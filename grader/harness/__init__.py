"""Code that runs inside the student's Jupyter kernel (stdlib + NumPy only at import)."""
