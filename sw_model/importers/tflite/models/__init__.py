"""Small .tflite models made by scripts in this folder (each file beside the script that writes it)."""
