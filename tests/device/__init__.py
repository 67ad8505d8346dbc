"""Device-side tests: numpy, runtimes and OpenCV only; the model files come from an assets folder."""
